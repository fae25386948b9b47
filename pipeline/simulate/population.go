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
	churnUsageDrop  = 1 << iota // calls far less
	churnOffnet                 // calls other networks much more
	churnHotline                // calls 10086 repeatedly
	churnCompetitor             // calls a competitor's hotline
	churnForward                // forwards calls to a new number on another network
	churnStopPaying             // stops topping up
	churnPortOut                // asks for a number-portability code
	churnBusinessOp             // pre-cancels, reports loss or asks for suspension
	churnSilent                 // goes completely quiet at the end
	churnDeactivate             // leaves within the window
)

// churnerShare is the share of subscribers that are about to leave.
const churnerShare = 0.03

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
	churn      uint16 // churn* bits; 0 for most subscribers
	churnStart int32  // absolute day the churn behaviour starts
	fwdDay     int32  // absolute day forwarding to the new number starts
	opDay      int32  // absolute day of the port-out query or business operation
	goneDay    int32  // absolute day from which the subscriber no longer exists; 0 = never
	silentFrom int32  // absolute day from which a churnSilent subscriber makes no calls
}

func (s *subscriber) churning(day int64) bool {
	return s.churn != 0 && day >= int64(s.churnStart)
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
// endDay are the absolute days of the window's start and of End, which
// churners' behaviour is placed between.
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
		if r.Float64() < churnerShare {
			makeChurner(s, r, startDay, endDay)
		}
	}
	return subs
}

// makeChurner gives s a churn episode that starts 4 to 16 days before End,
// but not before the window starts on startDay, and a random mix of the
// behaviours that betray it.
func makeChurner(s *subscriber, r *rand.Rand, startDay, endDay int64) {
	start := max(endDay-int64(4+r.IntN(13)), startDay)
	s.churnStart = int32(start)
	span := int(endDay - start) // >= 1
	pick := func(bit uint16, p float64) {
		if r.Float64() < p {
			s.churn |= bit
		}
	}
	pick(churnUsageDrop, 0.7)
	pick(churnOffnet, 0.5)
	pick(churnHotline, 0.45)
	pick(churnCompetitor, 0.3)
	pick(churnForward, 0.25)
	pick(churnStopPaying, 0.4)
	pick(churnPortOut, 0.35)
	pick(churnBusinessOp, 0.15)
	pick(churnSilent, 0.2)
	if s.churn == 0 {
		s.churn = churnUsageDrop
	}
	s.fwdDay = int32(start + int64(r.IntN(span)))
	s.opDay = int32(start + 1 + int64(r.IntN(max(span-1, 1))))
	s.silentFrom = int32(endDay - int64(1+r.IntN(3)))
	if s.churn&churnPortOut != 0 && r.Float64() < 0.3 && int64(s.opDay)+3 < endDay {
		s.churn |= churnDeactivate
		s.goneDay = s.opDay + int32(2+r.IntN(2)) // deactivated the day before
	}
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
