// Package numbering tells which network a phone number belongs to, from a
// configurable table of mainland mobile number prefixes (SPEC 2.1). It knows
// nothing of Kafka or ClickHouse.
package numbering

import (
	"strings"

	"churnwatch/schemas"
)

// DefaultPrefixes are the public mainland mobile allocations of SPEC 2.1.
var DefaultPrefixes = map[schemas.Network][]string{
	schemas.NetworkCMCC: {"134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159",
		"172", "178", "182", "183", "184", "187", "188", "195", "197", "198"},
	schemas.NetworkCUCC: {"130", "131", "132", "145", "155", "156", "166", "171", "175", "176", "185", "186", "196"},
	schemas.NetworkCTCC: {"133", "149", "153", "173", "174", "177", "180", "181", "189", "190", "191", "193", "199"},
	schemas.NetworkCBN:  {"192"},
}

// maxShortNumber is the longest number treated as a short service number
// (10086, 95555, 12345, 114...).
const maxShortNumber = 6

// Plan classifies numbers by prefix. The zero value knows no prefixes.
type Plan struct {
	home     schemas.Network
	prefixes map[string]schemas.Network
	maxLen   int
}

// NewPlan builds a plan from a network → prefixes table (nil means
// DefaultPrefixes) and the operator's home network.
func NewPlan(table map[schemas.Network][]string, home schemas.Network) *Plan {
	if table == nil {
		table = DefaultPrefixes
	}
	p := &Plan{home: home, prefixes: map[string]schemas.Network{}}
	for network, prefixes := range table {
		for _, prefix := range prefixes {
			p.prefixes[prefix] = network
			p.maxLen = max(p.maxLen, len(prefix))
		}
	}
	return p
}

// Home returns the operator's own network.
func (p *Plan) Home() schemas.Network { return p.home }

// Network returns the network of a number: SPECIAL for short service numbers,
// INTL for foreign numbers, the prefix table's network for mainland mobiles,
// and "" when it cannot tell (landlines, unknown prefixes).
func (p *Plan) Network(number string) schemas.Network {
	n := number
	switch {
	case strings.HasPrefix(n, "+86"):
		n = n[3:]
	case strings.HasPrefix(n, "+"), strings.HasPrefix(n, "00"):
		return schemas.NetworkINTL
	case len(n) == 13 && strings.HasPrefix(n, "86"):
		n = n[2:]
	}
	if len(n) <= maxShortNumber {
		return schemas.NetworkSPECIAL
	}
	if len(n) != 11 || n[0] != '1' {
		return ""
	}
	for l := min(p.maxLen, len(n)); l > 0; l-- {
		if network, ok := p.prefixes[n[:l]]; ok {
			return network
		}
	}
	return ""
}

// OffNet reports whether a call to a number on network counts as off-net
// (网间): any network but the home one and short service numbers, including
// ones the plan cannot tell.
func (p *Plan) OffNet(network schemas.Network) bool {
	return network != p.home && network != schemas.NetworkSPECIAL
}
