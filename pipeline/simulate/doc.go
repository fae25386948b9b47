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
// The population has ordinary subscribers and a share of churners
// (Config.ChurnShare, 3% by default) who leave within the window: each has a
// persona (a hotline complainer, a forwarder to a competitor's network, a
// fading user, one who stops paying, one who ports out or cancels at the
// counter), a churn day in the later part of the window on which it is
// deactivated, and from one to four weeks before it the behaviours behind
// the warning signals of SPEC section 4: calling less or not at all, calling
// other networks more, ringing the hotline or a competitor's, forwarding
// calls to a new number on another network, no more top-ups, asking for a
// porting code. Ordinary subscribers trip the same signals only now and
// then. GroundTruth labels every subscriber without generating events, so
// that an evaluation can score the signals against it.
//
// The package does not read from Kafka, compute signals, know about
// ClickHouse or create topics: it only writes the three input topics, through
// a *kafka.Writer the caller builds (NewWriter gives the recommended one).
package simulate
