// Package simulate generates a synthetic but realistic population of mobile
// subscribers and the events upstream systems would publish about them
// (voice CDRs, billing events, CRM profiles and business operations; SPEC
// sections 2-4), and produces those events to Kafka. It feeds demos, load
// tests and end-to-end tests of the pipeline.
//
// The output is a pure function of Config: the same seed, population size,
// window and shares yield byte-identical messages, so a run can be replayed.
// Each subscriber-day is derived from its own random stream (seeded by the
// seed, the subscriber and the calendar date), which keeps generation cheap,
// lets it run day by day with memory proportional to one day of events, and
// makes two runs over overlapping windows agree on most overlapping days.
//
// The population has ordinary subscribers and a small share (about 3%) of
// churners: from a day in the last two weeks of the window they call less,
// call other networks more, ring the hotline or a competitor's, forward calls
// to a new number on another network, stop topping up, ask for a porting code
// or go quiet. They exist so that the warning signals of SPEC section 4 have
// something to find; ordinary subscribers trip the same signals only rarely.
//
// The package does not read from Kafka, compute signals, know about
// ClickHouse or create topics: it only writes the three input topics, through
// a *kafka.Writer the caller builds (NewWriter gives the recommended one).
package simulate
