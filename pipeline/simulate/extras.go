package simulate

import (
	"fmt"
	"math/rand/v2"
	"time"

	"churnwatch/schemas"
)

// The labels of the workbench's profile fields.
var (
	interestLabels = []string{"golf", "tea", "fishing", "travel", "photography", "football", "reading", "fitness", "music", "cooking"}
	productLabels  = []string{"family-plan", "mailbox", "broadband-bundle", "ringback-tone", "cloud-storage", "iptv"}
	// groupNames are enterprise customers (集团客户); a group is one of them
	// in one region.
	groupNames = []string{"闽江科技", "海峡物流", "榕城建设", "东南电子", "临川医药", "赣江纺织", "鹭岛贸易", "武夷茶业",
		"九龙机械", "三明钢铁", "南平林业", "莆田鞋业"}
	// groupLevelShares are the shares of A1, A2, B1, B2 and C groups.
	groupLevelShares = []float64{0.05, 0.15, 0.25, 0.25, 0.30}
)

// groupsPerRegion is how many enterprise groups each region has.
const groupsPerRegion = 12

// profileExtras fills the workbench's profile fields of subscriber i, each
// for a share of the population, from a random stream of their own (the
// other fields and events do not change): the network age from the join
// date (four in five), interests (one in two), sticky products (two in five,
// more often for higher tiers) and an enterprise group with its level (a
// third of diamond and gold subscribers, one in ten of the others; the
// group's name and level are the same for all its members).
func (g *generator) profileExtras(i int, s *subscriber, join, end time.Time, p *schemas.Profile) {
	r := rand.New(rand.NewPCG(hash3(g.seed, tagProfileExtras, uint64(i)), uint64(i)))
	if r.Float64() < 0.8 {
		months := int64(end.Year()-join.Year())*12 + int64(end.Month()-join.Month())
		if end.Day() < join.Day() {
			months--
		}
		p.NetworkAgeMonths = ptr(max(months, 0))
	}
	if r.Float64() < 0.5 {
		p.Interests = ptr(pick(r, interestLabels, 1+r.IntN(3)))
	}
	if r.Float64() < 0.25+0.1*float64(3-s.tier) {
		p.Products = ptr(pick(r, productLabels, 1+r.IntN(2)))
	}
	groupShare := 0.1
	if s.tier <= 1 { // diamond, gold
		groupShare = 0.33
	}
	if r.Float64() < groupShare {
		k := r.IntN(groupsPerRegion)
		id := uint64(s.region)*groupsPerRegion + uint64(k)
		level, u := schemas.GroupLevels[len(schemas.GroupLevels)-1], unit(hash3(g.seed, tagProfileExtras, ^id))
		for j, share := range groupLevelShares {
			if u < share {
				level = schemas.GroupLevels[j]
				break
			}
			u -= share
		}
		p.Group = &schemas.Group{ID: fmt.Sprintf("G-%04d", id+1), Name: groupNames[k%len(groupNames)], Level: level}
	}
}

// pick returns n distinct labels of list, in the list's order.
func pick(r *rand.Rand, list []string, n int) []string {
	idx := r.Perm(len(list))[:n]
	out := make([]string, 0, n)
	for j, l := range list {
		for _, k := range idx {
			if k == j {
				out = append(out, l)
			}
		}
	}
	return out
}
