package simulate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"churnwatch/schemas"
)

// CRM event types by index, for sideEvent.crm.
const (
	crmPortOutQuery uint8 = iota
	crmPreCancel
	crmLossReport
	crmSuspendRequest
	crmDeactivate
	crmReactivate
)

var crmTypes = [...]schemas.CRMType{
	crmPortOutQuery:   schemas.CRMPortOutQuery,
	crmPreCancel:      schemas.CRMPreCancel,
	crmLossReport:     schemas.CRMLossReport,
	crmSuspendRequest: schemas.CRMSuspendRequest,
	crmDeactivate:     schemas.CRMDeactivate,
	crmReactivate:     schemas.CRMReactivate,
}

var paymentChannels = [...]string{"app", "app", "app", "wechat", "wechat", "alipay", "alipay", "bank", "counter", "autopay"}

// Names in Chinese: a common surname and one or two given-name characters.
var (
	surnames   = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江")
	givenNames = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华文辉建国玲红燕鹏斌宇浩凯婷雪琳晨欣怡子轩博俊志峰鑫佳琪瑶欢海波亮春梅兰")
)

// emitDay merges the day's calls and side events by key and emits them.
func (g *generator) emitDay() error {
	keys, side := g.keys, g.side
	for len(keys) > 0 || len(side) > 0 {
		var m Message
		var err error
		if len(side) > 0 && (len(keys) == 0 || side[0].key < keys[0]) {
			m, err = g.sideMessage(&side[0])
			side = side[1:]
		} else {
			m, err = g.callMessage(keys[0])
			keys = keys[1:]
		}
		if err != nil {
			return err
		}
		if err := g.emit(m); err != nil {
			return err
		}
		if g.invalidOn {
			if bad, ok := g.corrupt(m); ok {
				if err := g.emit(bad); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// eventID makes a deterministic id, unique across a run and across runs of
// the same seed: prefix, seed, date, subscriber and slot.
func (g *generator) eventID(prefix byte, i int, slot uint32) string {
	return string(g.appendEventID(make([]byte, 0, 40), prefix, i, slot))
}

func (g *generator) appendEventID(b []byte, prefix byte, i int, slot uint32) []byte {
	b = append(b, prefix, '-')
	b = append(b, g.seedText...)
	b = append(b, '-')
	b = append(b, g.date...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, uint64(slot), 10)
}

// msisdn returns the subscriber's number as the message key and as written
// in the message (with +86 for the few whose upstream system adds it).
func (g *generator) msisdn(i int) (key, field string) {
	key = g.msisdns[i*11 : i*11+11]
	if g.subs[i].plus86 {
		return key, "+86" + key
	}
	return key, key
}

func (g *generator) eventTime(off int64) time.Time {
	return time.Unix(g.start+off, 0).In(g.cfg.Location)
}

func (g *generator) message(topic, key string, v any, t time.Time) (Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Message{}, fmt.Errorf("simulate: encode %s message: %w", topic, err)
	}
	return Message{Topic: topic, Key: key, Value: b, Time: t}, nil
}

func (g *generator) callMessage(k uint64) (Message, error) {
	off, i, slot := splitKey(k)
	s := &g.subs[i]
	g.reseed(g.seed^tagEvent, uint64(i), uint64(g.abs), uint64(slot))
	r := g.r
	key, field := g.msisdn(i)
	// The CDR is reused from message to message, and its strings are cut
	// from one: allocations are much of the cost here.
	c := &g.cdr
	*c = schemas.CDR{
		MSISDN:    field,
		Direction: schemas.DirectionMO,
		StartTime: g.eventTime(off),
	}
	var peer, target number
	duration := 0.0
	switch {
	case slot >= slotCompetitor:
		peer = special(competitorHotlines[r.IntN(len(competitorHotlines))])
		duration = lognormal(r, 4.6, 0.6)
	case slot >= slotHotline:
		peer = special(hotline)
		duration = lognormal(r, 5.0, 0.6)
	default:
		churning := s.churning(g.abs)
		if r.Float64() >= float64(s.moShare) {
			c.Direction = schemas.DirectionMT
		}
		peer = g.callPeer(i, s, c.Direction, churning)
		if c.Direction == schemas.DirectionMT {
			switch {
			case churning && s.churn&churnForward != 0 && g.abs >= int64(s.fwdDay) && r.Float64() < 0.7:
				c.Direction, target = schemas.DirectionFWD, newSIM(g.seed, i, 0)
			case s.forwards && r.Float64() < 0.15:
				c.Direction, target = schemas.DirectionFWD, forwardTarget(g.seed, i)
			}
		}
		if c.Direction != schemas.DirectionMO || r.Float64() >= 0.06 { // 6% of calls made go unanswered
			duration = lognormal(r, 4.0, 1.1)
			if peer.net == schemas.NetworkSPECIAL {
				duration = lognormal(r, 4.8, 0.7)
			}
		}
	}
	c.DurationS = int64(min(duration, 3600))
	if duration > 0 && c.DurationS == 0 {
		c.DurationS = 1
	}
	if r.Float64() < 0.5 {
		c.PeerNetwork = peer.net
		if c.Direction == schemas.DirectionFWD {
			c.PeerNetwork = target.net
		}
	}
	b := g.appendEventID(g.scratch[:0], 'c', i, slot)
	idEnd := len(b)
	b = peer.appendTo(b)
	peerEnd := len(b)
	b = target.appendTo(b)
	targetEnd := len(b)
	if r.Float64() < 0.95 {
		b = g.appendCellID(b, i, s)
	}
	g.scratch = b
	str := string(b)
	c.EventID, c.Peer, c.ForwardTo, c.CellID = str[:idEnd], str[idEnd:peerEnd], str[peerEnd:targetEnd], str[targetEnd:]
	return g.message(g.topics.CDR, key, c, c.StartTime)
}

// callPeer picks the other party of an ordinary call: mostly one of the
// subscriber's twenty regular contacts, the first few far more often, else a
// one-off number, a service number, the hotline or a foreign number. A
// churner who moves to another network calls its new circle there.
func (g *generator) callPeer(i int, s *subscriber, dir schemas.Direction, churning bool) number {
	r := g.r
	if churning && s.churn&churnOffnet != 0 && r.Float64() < 0.55 {
		return newSIM(g.seed, i, uint64(1+r.IntN(6)))
	}
	w := r.Float64()
	if dir == schemas.DirectionMO {
		switch {
		case w < 0.003:
			return special(hotline)
		case w < 0.0032:
			return special(competitorHotlines[r.IntN(len(competitorHotlines))])
		case w < 0.018:
			return special(serviceNumbers[r.IntN(len(serviceNumbers))])
		case w < 0.020:
			return foreign(r.Uint64())
		}
	} else {
		switch {
		case w < 0.005: // the operator's own outbound calls
			return special(hotline)
		case w < 0.015:
			return special(serviceNumbers[r.IntN(len(serviceNumbers))])
		case w < 0.017:
			return foreign(r.Uint64())
		}
	}
	if r.Float64() < 0.8 {
		y := r.Float64()
		return contact(g.seed, i, s, uint64(20*y*y))
	}
	return peerNumber(r.Uint64(), float64(s.offnet))
}

// appendCellID names the cell a call was made in: mostly the subscriber's home or
// work cell, in its region's location areas.
func (g *generator) appendCellID(b []byte, i int, s *subscriber) []byte {
	h := hash3(g.seed, tagContact, uint64(i))
	lac := 5700 + uint64(s.region)*8
	var ci uint64
	switch u := g.r.Float64(); {
	case u < 0.6:
		lac, ci = lac+h%4, 1000+(h>>8)%8000
	case u < 0.85:
		lac, ci = lac+(h>>4)%4, 1000+(h>>24)%8000
	default:
		lac, ci = lac+uint64(g.r.IntN(8)), 1000+uint64(g.r.IntN(8000))
	}
	b = append(b, "460-00-"...)
	b = strconv.AppendUint(b, lac, 10)
	b = append(b, '-')
	return strconv.AppendUint(b, ci, 10)
}

func (g *generator) sideMessage(e *sideEvent) (Message, error) {
	off, i, slot := splitKey(e.key)
	key, field := g.msisdn(i)
	t := g.eventTime(off)
	switch e.kind {
	case sideProfile, sidePartialProfile, sideCRM:
		ev := schemas.CRMEvent{EventID: g.eventID('r', i, slot), MSISDN: field, TS: t}
		switch e.kind {
		case sideProfile:
			ev.Type, ev.Profile = schemas.CRMProfile, g.profile(i)
		case sidePartialProfile:
			ev.Type, ev.Profile = schemas.CRMProfile, g.profileUpdate(i, slot)
		default:
			ev.Type = crmTypes[e.crm]
		}
		m, err := g.message(g.topics.CRM, key, &ev, t)
		m.Initial = e.kind == sideProfile
		return m, err
	}
	ev := schemas.BillingEvent{EventID: g.eventID('b', i, slot), MSISDN: field, TS: t}
	switch e.kind {
	case sideBill:
		ev.Type, ev.AmountFen = schemas.BillingBill, &e.amount
		ev.BillMonth = fmt.Sprintf("%04d-%02d", e.month/12, e.month%12+1)
	case sidePayment:
		ev.Type, ev.AmountFen, ev.BalanceFen = schemas.BillingPayment, &e.amount, &e.balance
		ev.Channel = paymentChannels[hash4(g.seed, tagBill, uint64(i), uint64(g.abs))%uint64(len(paymentChannels))]
	case sideBalance:
		ev.Type, ev.BalanceFen = schemas.BillingBalance, &e.balance
	case sideArrears:
		ev.Type, ev.AmountFen = schemas.BillingArrears, &e.amount
	}
	return g.message(g.topics.Billing, key, &ev, t)
}

func ptr[T any](v T) *T { return &v }

func (g *generator) manager(prefix string, s *subscriber, n uint16) string {
	return fmt.Sprintf("%s-%03d", prefix, int(s.region)*g.cfg.Managers+int(n))
}

// profile is the subscriber's full profile as of the start of the window.
func (g *generator) profile(i int) *schemas.Profile {
	s := &g.subs[i]
	g.reseed(g.seed, tagProfile, uint64(i), 0)
	r := g.r
	name := []rune{surnames[r.IntN(len(surnames))], givenNames[r.IntN(len(givenNames))]}
	if r.Float64() < 0.6 {
		name = append(name, givenNames[r.IntN(len(givenNames))])
	}
	end := g.cfg.End.In(g.cfg.Location)
	birthday := time.Date(1950+r.IntN(56), 1, 1+r.IntN(365), 0, 0, 0, 0, time.UTC)
	// Higher tiers have mostly been customers for longer.
	years := 1 + r.IntN(13+4*int(3-s.tier))
	join := end.AddDate(-years, 0, -r.IntN(365))
	p := &schemas.Profile{
		Name:     ptr(string(name)),
		Birthday: ptr(birthday.Format(time.DateOnly)),
		Tier:     ptr(schemas.Tiers[s.tier]),
		Region:   ptr(g.cfg.Regions[s.region]),
		JoinDate: ptr(join.Format(time.DateOnly)),
		Status:   ptr("active"),
	}
	if s.am != 0 {
		p.AccountManager = ptr(g.manager("am", s, s.am))
	}
	if s.pm != 0 {
		p.PhoneManager = ptr(g.manager("pm", s, s.pm))
	}
	// Two in three are on a promotion; its end lies anywhere from three
	// weeks ago to a year ahead, so a few in a hundred end within 30 days.
	if r.Float64() < 0.67 {
		p.PromoEnd = ptr(end.AddDate(0, 0, -20+r.IntN(400)).Format(time.DateOnly))
	}
	g.profileExtras(i, s, join, end, p)
	return p
}

// profileUpdate is a partial profile: a renewed promotion, or a new manager
// for a subscriber that has one.
func (g *generator) profileUpdate(i int, slot uint32) *schemas.Profile {
	s := &g.subs[i]
	g.reseed(g.seed^tagProfile, uint64(i), uint64(g.abs), uint64(slot))
	r := g.r
	p := &schemas.Profile{}
	switch u := r.Float64(); {
	case u < 0.4 && s.pm != 0:
		p.PhoneManager = ptr(g.manager("pm", s, uint16(1+r.IntN(g.cfg.Managers))))
	case u < 0.6 && s.am != 0:
		p.AccountManager = ptr(g.manager("am", s, uint16(1+r.IntN(g.cfg.Managers))))
	default:
		end := g.cfg.End.In(g.cfg.Location)
		p.PromoEnd = ptr(end.AddDate(0, 0, 90+r.IntN(300)).Format(time.DateOnly))
	}
	return p
}

// The kinds of invalid message InvalidShare adds.
const (
	invalidMSISDN = iota
	invalidEnum
	invalidJSON
	invalidMissing
	invalidKinds
)

// corrupt decides, from the message's identity, whether an invalid sibling
// of m follows it, and makes it: a copy with a distinct event id and one
// defect.
func (g *generator) corrupt(m Message) (Message, bool) {
	h := hash3(g.seed^tagInvalid, uint64(m.Time.Unix()), mix(uint64(len(m.Value)))^hashString(m.Key))
	if unit(h) >= g.cfg.InvalidShare {
		return Message{}, false
	}
	v := m.Value
	if i := bytes.Index(v, []byte(`","msisdn"`)); i > 0 {
		v = bytes.Join([][]byte{v[:i], []byte(`-x`), v[i:]}, nil)
	}
	enum, replacement := []byte(`"type":"`), []byte(`"type":"REFUND"`)
	missing := []byte(`"ts":`)
	switch m.Topic {
	case g.topics.CDR:
		enum, replacement, missing = []byte(`"direction":"`), []byte(`"direction":"INBOUND"`), []byte(`"duration_s":`)
	case g.topics.CRM:
		replacement = []byte(`"type":"UPGRADE"`)
	}
	switch mix(h) % invalidKinds {
	case invalidMSISDN:
		bad := [...]string{m.Key[:10], "0794" + m.Key[4:], m.Key[:3] + "-" + m.Key[3:7] + "-" + m.Key[7:], "86" + m.Key[1:]}
		start := bytes.Index(v, []byte(`"msisdn":"`)) + len(`"msisdn":"`)
		end := start + bytes.IndexByte(v[start:], '"')
		v = bytes.Join([][]byte{v[:start], []byte(bad[(h>>8)%uint64(len(bad))]), v[end:]}, nil)
	case invalidEnum:
		start := bytes.Index(v, enum)
		end := start + len(enum) + bytes.IndexByte(v[start+len(enum):], '"') + 1
		v = bytes.Join([][]byte{v[:start], replacement, v[end:]}, nil)
	case invalidJSON:
		v = v[:len(v)/2]
	case invalidMissing:
		v = bytes.Replace(v, missing, []byte(`"x_`+string(missing[1:])), 1)
	}
	return Message{Topic: m.Topic, Key: m.Key, Value: v, Time: m.Time, Invalid: true}, true
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}
