package simulate

import (
	"math"
	"math/rand/v2"
	"strconv"

	"churnwatch/schemas"
)

// Tags keep the random streams derived from one seed apart.
const (
	tagMSISDN uint64 = iota + 1
	tagAttrs
	tagProfile
	tagDay
	tagEvent
	tagContact
	tagPayJitter
	tagBill
	tagInvalid
	tagRare
	tagProfileExtras
)

// mix is the splitmix64 finaliser: a cheap bijection whose output bits all
// depend on all input bits.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hash3(a, b, c uint64) uint64 { return mix(mix(mix(a)^b) ^ c) }

func hash4(a, b, c, d uint64) uint64 { return mix(hash3(a, b, c) ^ d) }

// unit maps a hash to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// The subscribers are China Mobile's own: their numbers come from CMCC's
// 13x/15x/18x allocations.
var subscriberPrefixes = [...]uint64{134, 135, 136, 137, 138, 139, 150, 151, 152, 157, 158, 159, 182, 183, 184, 187, 188}

// Mobile prefixes of each network (SPEC 2.1), for peers and forward targets.
var (
	prefixesCMCC = [...]uint64{134, 135, 136, 137, 138, 139, 147, 150, 151, 152, 157, 158, 159, 172, 178, 182, 183, 184, 187, 188, 195, 197, 198}
	prefixesCUCC = [...]uint64{130, 131, 132, 145, 155, 156, 166, 171, 175, 176, 185, 186, 196}
	prefixesCTCC = [...]uint64{133, 149, 153, 173, 174, 177, 180, 181, 189, 190, 191, 193, 199}
)

// numbering turns subscriber indexes into unique MSISDNs that look random:
// a seeded permutation of the 17*10^8 numbers of subscriberPrefixes (a
// four-round Feistel network on 32 bits, cycle-walked into range), so two
// subscribers never share a number and neighbours look nothing alike.
type numbering struct {
	keys [4]uint64
}

const numberSpace = uint64(len(subscriberPrefixes)) * 1e8

func newNumbering(seed uint64) numbering {
	var n numbering
	for r := range n.keys {
		n.keys[r] = hash3(seed, tagMSISDN, uint64(r))
	}
	return n
}

func (n numbering) permute(x uint64) uint64 {
	l, r := x>>16, x&0xffff
	for _, k := range n.keys {
		l, r = r, l^(mix(r^k)&0xffff)
	}
	return l<<16 | r
}

func (n numbering) msisdn(i int) uint64 {
	x := uint64(i)
	for {
		x = n.permute(x)
		if x < numberSpace {
			break
		}
	}
	return subscriberPrefixes[x/1e8]*1e8 + x%1e8
}

// Behaviours of a churner, as bits of subscriber.churn.
const (
	churnUsageDrop  = 1 << iota // calls far less from the onset
	churnOffnet                 // calls other networks much more
	churnHotline                // calls 10086 repeatedly
	churnCompetitor             // calls a competitor's hotline
	churnForward                // forwards calls to a new number on another network
	churnStopPaying             // stops topping up
	churnPortOut                // asks for a number-portability code
	churnBusinessOp             // pre-cancels, reports loss or asks for suspension
	churnSilent                 // goes completely quiet in the last days
	churnFade                   // calls fewer and fewer, down to a tenth, by the churn day
)

// subscriber holds what stays the same about a subscriber for the whole run,
// kept compact because there may be millions.
type subscriber struct {
	msisdn     uint64
	callRate   float32 // mean calls a day
	moShare    float32 // share of calls the subscriber makes
	offnet     float32 // share of contacts on other networks
	monthlyFen int32   // typical monthly spend
	bufferFen  int32   // balance left over when a top-up is due
	region     uint16
	am, pm     uint16 // 1-based manager number within the region; 0 = none
	tier       uint8  // index into schemas.Tiers
	payPeriod  uint8  // days between top-ups, 7..21
	payPhase   uint8
	balPeriod  uint8 // days between balance snapshots, 3..5
	balPhase   uint8
	plus86     bool   // upstream writes this subscriber's number as +86...
	forwards   bool   // has call forwarding to forwardTo set up
	persona    uint8  // 1 + index into personaModels for a churner; 0 for the loyal
	churn      uint16 // churn* bits; 0 for the loyal
	churnStart int32  // absolute day the churn behaviour starts (the onset)
	churnDay   int32  // absolute day the churner leaves: deactivated that afternoon
	fwdDay     int32  // absolute day forwarding to the new number starts
	opDay      int32  // absolute day of the port-out query or business operation
	goneDay    int32  // absolute day from which the subscriber no longer exists; 0 = never
	silentFrom int32  // absolute day from which a churnSilent subscriber makes no calls
}

func (s *subscriber) churning(day int64) bool {
	return s.churn != 0 && day >= int64(s.churnStart)
}

// usageFactor scales the subscriber's call rate on day: a churner who
// fades calls less every day from the onset, down to a tenth on the churn
// day; one whose usage drops calls 30% of the usual from the onset.
func (s *subscriber) usageFactor(day int64) float64 {
	switch {
	case !s.churning(day):
		return 1
	case s.churn&churnFade != 0:
		progress := float64(day-int64(s.churnStart)+1) / float64(int64(s.churnDay)-int64(s.churnStart)+1)
		return 1 - 0.9*min(progress, 1)
	case s.churn&churnUsageDrop != 0:
		return 0.3
	}
	return 1
}

// complainer tells a hotline complainer, who rings the hotline more often
// than churners for whom it is a side trait.
func (s *subscriber) complainer() bool {
	return s.persona != 0 && personaModels[s.persona-1].name == PersonaHotlineComplainer
}

// hotlineDays is the share of days from the onset on which a churner with
// churnHotline calls the hotline.
func (s *subscriber) hotlineDays() float64 {
	if s.complainer() {
		return 0.55
	}
	return 0.35
}

// Churner personas: the story behind a churner's behaviour, as
// Label.Persona names it. Each maps onto signals of SPEC section 4.
const (
	// PersonaHotlineComplainer rings 10086 again and again (hotline_calls),
	// often a competitor's hotline too, and may ask for a porting code.
	PersonaHotlineComplainer = "hotline_complainer"
	// PersonaForwarder has a new SIM on another network: forwards calls to
	// it (forward_offnet), calls its new circle there (offnet_share_rise) and
	// uses the old number less.
	PersonaForwarder = "competitor_forwarder"
	// PersonaFadingUsage calls less and less (usage_drop_daily) and goes
	// quiet in the last days (silent_yesterday).
	PersonaFadingUsage = "fading_usage"
	// PersonaStopsPaying stops topping up: the balance drains into arrears
	// (suspension_imminent) and fewer payments arrive (payment_freq_drop).
	PersonaStopsPaying = "stops_paying"
	// PersonaPortingOut asks for a number-portability code (port_out) or goes
	// to the counter to pre-cancel, suspend or report the SIM lost
	// (business_op), often after ringing a competitor.
	PersonaPortingOut = "porting_out"
)

// trait is a behaviour a persona shows with probability p.
type trait struct {
	bit uint16
	p   float64
}

// personaModels are the personas with their share of the churners, how
// many days before the churn day their behaviour starts, and their traits.
var personaModels = [...]struct {
	name           string
	weight         float64
	leadLo, leadHi int // days from the onset to the churn day, inclusive; 0, 0: see makeChurner
	traits         []trait
}{
	{PersonaHotlineComplainer, 0.22, 7, 16, []trait{{churnHotline, 1}, {churnCompetitor, 0.35}, {churnUsageDrop, 0.35}, {churnPortOut, 0.35}, {churnOffnet, 0.15}}},
	{PersonaForwarder, 0.20, 8, 18, []trait{{churnForward, 1}, {churnOffnet, 0.8}, {churnUsageDrop, 0.6}, {churnCompetitor, 0.3}, {churnPortOut, 0.2}}},
	{PersonaFadingUsage, 0.25, 10, 21, []trait{{churnFade, 1}, {churnSilent, 0.7}, {churnStopPaying, 0.3}, {churnHotline, 0.1}}},
	{PersonaStopsPaying, 0.15, 0, 0, []trait{{churnStopPaying, 1}, {churnSilent, 0.5}, {churnUsageDrop, 0.4}, {churnHotline, 0.2}}},
	{PersonaPortingOut, 0.18, 5, 14, []trait{{churnPortOut, 0.75}, {churnBusinessOp, 0.35}, {churnCompetitor, 0.5}, {churnOffnet, 0.3}, {churnUsageDrop, 0.3}}},
}

// Personas returns the persona names in a fixed order (a fresh slice).
func Personas() []string {
	out := make([]string, len(personaModels))
	for i, p := range personaModels {
		out[i] = p.name
	}
	return out
}

// Per-tier behaviour: mean calls a day and the monthly spend range in fen
// (SPEC section 3's thresholds: diamond >= 500 yuan, gold >= 300, silver >= 120).
var tierModel = [...]struct {
	calls          float64
	billLo, billHi float64
}{
	{calls: 11, billLo: 52000, billHi: 150000},
	{calls: 9, billLo: 31000, billHi: 49000},
	{calls: 7, billLo: 12500, billHi: 29500},
	{calls: 4.5, billLo: 1800, billHi: 11500},
}

// buildPopulation derives every subscriber's fixed attributes. startDay and
// endDay are the absolute days of the window's start and of End; churners'
// behaviour is placed between the end of the warm-up and End.
func buildPopulation(cfg Config, seed uint64, startDay, endDay int64) []subscriber {
	num := newNumbering(seed)
	var cum [4]float64
	total := 0.0
	for i, t := range schemas.Tiers {
		total += cfg.TierShares[t]
		cum[i] = total
	}
	subs := make([]subscriber, cfg.Subscribers)
	var pcg rand.PCG
	r := rand.New(&pcg)
	for i := range subs {
		pcg.Seed(hash3(seed, tagAttrs, uint64(i)), seed)
		s := &subs[i]
		s.msisdn = num.msisdn(i)
		u := r.Float64() * total
		tier := 3
		for k, c := range cum {
			if u < c {
				tier = k
				break
			}
		}
		s.tier = uint8(tier)
		m := tierModel[tier]
		s.callRate = float32(min(15, max(2, m.calls*(0.6+0.8*r.Float64()))))
		s.moShare = float32(0.42 + 0.18*r.Float64())
		s.offnet = float32(0.12 + 0.23*r.Float64())
		s.monthlyFen = int32(m.billLo + (m.billHi-m.billLo)*r.Float64()*r.Float64())
		s.region = uint16(r.IntN(len(cfg.Regions)))
		// A few high-value subscribers have no manager in their profile, so
		// that the pipeline's pool assignment gets exercised.
		hasManager := r.Float64() >= 0.05
		if tier <= 1 && hasManager {
			s.am = uint16(1 + r.IntN(cfg.Managers))
		}
		if tier <= 2 && hasManager {
			s.pm = uint16(1 + r.IntN(cfg.Managers))
		}
		s.payPeriod = uint8(7 + r.IntN(15))
		s.payPhase = uint8(r.IntN(int(s.payPeriod)))
		s.balPeriod = uint8(3 + r.IntN(3))
		s.balPhase = uint8(r.IntN(int(s.balPeriod)))
		daily := float64(s.monthlyFen) / 30
		s.bufferFen = int32(daily*float64(4+r.IntN(9)) + 2000)
		s.plus86 = r.Float64() < 0.03
		s.forwards = r.Float64() < 0.04
		// Always drawn, so that a churner stays one (with the same story)
		// when the share grows.
		if r.Float64() < cfg.ChurnShare {
			makeChurner(s, r, startDay+int64(cfg.Warmup), endDay)
		}
	}
	return subs
}

// makeChurner makes s a churner: a persona, a churn day in the later part
// of the window [startDay, endDay) (from two fifths of it on, so that most
// churners have some history before their behaviour changes), the onset of
// the behaviour a persona-dependent number of days before it (not before
// the window), and the days of the forwarding, the port-out query or
// business operation and the final silence (one to three days before the
// churn day) between the two.
func makeChurner(s *subscriber, r *rand.Rand, startDay, endDay int64) {
	total := 0.0
	for _, p := range personaModels {
		total += p.weight
	}
	k, u := 0, r.Float64()*total
	for k < len(personaModels)-1 && u >= personaModels[k].weight {
		u -= personaModels[k].weight
		k++
	}
	m := &personaModels[k]
	s.persona = uint8(k + 1)
	days := endDay - startDay // >= 1
	lo := days * 2 / 5
	churnDay := startDay + lo + int64(r.IntN(int(days-lo)))
	lead := m.leadLo + r.IntN(m.leadHi-m.leadLo+1)
	if m.name == PersonaStopsPaying {
		// One who stops paying was living from top-up to top-up: a small
		// buffer, so that the balance runs out within a top-up period and a
		// few days of the last top-up before the onset, some days before the
		// operator closes the account on the churn day.
		s.bufferFen = int32(float64(s.monthlyFen)/30*float64(1+r.IntN(3)) + 300)
		lead = int(s.payPeriod) + 6 + r.IntN(6)
	}
	start := max(churnDay-int64(lead), startDay)
	s.churnDay, s.churnStart, s.goneDay = int32(churnDay), int32(start), int32(churnDay+1)
	for _, t := range m.traits {
		if r.Float64() < t.p {
			s.churn |= t.bit
		}
	}
	if m.name == PersonaPortingOut && s.churn&(churnPortOut|churnBusinessOp) == 0 {
		s.churn |= churnBusinessOp
	}
	lead = int(churnDay - start) // days of behaviour before the churn day, >= 0
	s.fwdDay = int32(start + int64(r.IntN(min(3, lead)+1)))
	s.opDay = int32(max(churnDay-1-int64(r.IntN(min(6, lead)+1)), start))
	s.silentFrom = int32(max(churnDay-1-int64(r.IntN(3)), start))
}

// number is a phone number the simulator invents, kept unformatted until a
// message needs it (formatting is a large part of the cost of a CDR): the
// literal lit, then prefix if not 0, then tail padded to width digits if
// width is not 0.
type number struct {
	lit    string
	prefix uint64
	tail   uint64
	width  int
	net    schemas.Network
}

func special(digits string) number { return number{lit: digits, net: schemas.NetworkSPECIAL} }

func (n number) appendTo(b []byte) []byte {
	b = append(b, n.lit...)
	if n.prefix != 0 {
		b = strconv.AppendUint(b, n.prefix, 10)
	}
	if n.width != 0 {
		b = appendPadded(b, n.tail, n.width)
	}
	return b
}

func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// mobileOn returns a mobile number on network net, chosen by h.
func mobileOn(net schemas.Network, h uint64) number {
	var p uint64
	switch net {
	case schemas.NetworkCUCC:
		p = prefixesCUCC[h%uint64(len(prefixesCUCC))]
	case schemas.NetworkCTCC:
		p = prefixesCTCC[h%uint64(len(prefixesCTCC))]
	case schemas.NetworkCBN:
		p = 192
	default:
		p = prefixesCMCC[h%uint64(len(prefixesCMCC))]
	}
	return number{prefix: p, tail: (h >> 8) % 1e8, width: 8, net: net}
}

// landline returns a fixed-line number, mostly local (0794 is Fuzhou,
// Jiangxi), sometimes in Fuzhou (Fujian), Nanchang, Beijing or Shanghai.
// Fixed lines are mostly China Telecom's.
func landline(h uint64) number {
	net := schemas.NetworkCTCC
	if h%10 < 3 {
		net = schemas.NetworkCMCC
	}
	h >>= 4
	switch u := h % 100; {
	case u < 70:
		return number{lit: "0794", tail: 2000000 + (h>>7)%7000000, width: 7, net: net}
	case u < 80:
		return number{lit: "0591", tail: 20000000 + (h>>7)%70000000, width: 8, net: net}
	case u < 90:
		return number{lit: "0791", tail: 80000000 + (h>>7)%9000000, width: 8, net: net}
	case u < 95:
		return number{lit: "010", tail: 50000000 + (h>>7)%40000000, width: 8, net: net}
	default:
		return number{lit: "021", tail: 50000000 + (h>>7)%40000000, width: 8, net: net}
	}
}

// foreign returns an international number written with a leading +.
func foreign(h uint64) number {
	n := number{tail: (h >> 3) % 1e7, width: 7, net: schemas.NetworkINTL}
	switch h % 4 {
	case 0:
		n.lit = "+8529"
	case 1:
		n.lit = "+1415"
	case 2:
		n.lit = "+6591"
	default:
		n.lit, n.tail, n.width = "+8190", (h>>3)%1e8, 8
	}
	return n
}

// Short service numbers: the operator's hotline, its competitors', banks,
// utilities and public services.
const hotline = "10086"

var (
	competitorHotlines = [...]string{"10010", "10010", "10000", "10000", "10099"}
	serviceNumbers     = [...]string{"95588", "95533", "95555", "95566", "95599", "95598", "12345", "114", "12315", "95511"}
)

// contact returns the subscriber's c-th regular contact: the same number
// every time, on CMCC mostly, with the subscriber's own share of other
// networks and landlines.
func contact(seed uint64, i int, s *subscriber, c uint64) number {
	h := hash4(seed, tagContact, uint64(i), c)
	return peerNumber(h, float64(s.offnet))
}

// peerNumber draws a number: 8% landlines, offnet share on CUCC/CTCC/CBN,
// the rest on CMCC.
func peerNumber(h uint64, offnet float64) number {
	u := unit(h)
	h2 := mix(h)
	switch {
	case u < 0.08:
		return landline(h2)
	case u < 0.08+offnet:
		v := (u - 0.08) / offnet
		switch {
		case v < 0.55:
			return mobileOn(schemas.NetworkCUCC, h2)
		case v < 0.96:
			return mobileOn(schemas.NetworkCTCC, h2)
		default:
			return mobileOn(schemas.NetworkCBN, h2)
		}
	default:
		return mobileOn(schemas.NetworkCMCC, h2)
	}
}

// newSIM is the number a churner is moving to: on China Unicom or China
// Telecom. Its new contacts (k > 0) are mostly on the same network.
func newSIM(seed uint64, i int, k uint64) number {
	h := hash4(seed, tagContact, uint64(i), 1000+k)
	net := schemas.NetworkCUCC
	if hash4(seed, tagContact, uint64(i), 999)%5 < 2 {
		net = schemas.NetworkCTCC
	}
	if k > 0 && h%4 == 0 {
		return peerNumber(mix(h), 0.5)
	}
	return mobileOn(net, h)
}

// forwardTarget is where an ordinary subscriber with call forwarding sends
// calls: a family member's mobile or a landline, on another network only
// now and then.
func forwardTarget(seed uint64, i int) number {
	h := hash4(seed, tagContact, uint64(i), 2000)
	switch u := unit(h); {
	case u < 0.15:
		return landline(mix(h))
	case u < 0.2:
		return mobileOn(schemas.NetworkCUCC, mix(h))
	default:
		return mobileOn(schemas.NetworkCMCC, mix(h))
	}
}

// lognormal draws exp(mu + sigma*N(0,1)).
func lognormal(r *rand.Rand, mu, sigma float64) float64 {
	return math.Exp(mu + sigma*r.NormFloat64())
}

// poisson draws a Poisson variate by Knuth's method: fine for the small
// means of daily call counts.
func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	l := math.Exp(-mean)
	k, p := 0, r.Float64()
	for p > l {
		k++
		p *= r.Float64()
	}
	return k
}
