package realtime

import (
	"strconv"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// BillingState evaluates suspension_imminent for one partition of
// billing.events. It keeps each subscriber's latest monthly bill, whose
// amount spread over the month is the average daily spend.
type BillingState struct {
	base
	bills map[uint64]bill // by subscriber (subscriberKey)
}

// bill is a latest bill as the state keeps it, small for the same reason
// as call: the month as year*12 + month - 1.
type bill struct {
	month     int32
	amountFen int64
}

// monthIndex turns YYYY-MM into year*12 + month - 1 (validated input; -1
// for anything else).
func monthIndex(m string) int32 {
	if len(m) != 7 || m[4] != '-' {
		return -1
	}
	y, err1 := strconv.Atoi(m[:4])
	mo, err2 := strconv.Atoi(m[5:])
	if err1 != nil || err2 != nil {
		return -1
	}
	return int32(y*12 + mo - 1)
}

// Bill is a subscriber's latest monthly bill.
type Bill struct {
	MSISDN    string
	Month     string // YYYY-MM
	AmountFen int64
}

// NewBillingState restores a partition's state.
func NewBillingState(rules Rules, topic string, watermark time.Time, bills []Bill, fired []Fired) *BillingState {
	s := &BillingState{base: newBase(rules, topic, watermark, fired), bills: make(map[uint64]bill, len(bills))}
	for _, b := range bills {
		s.bills[subscriberKey(b.MSISDN)] = bill{month: monthIndex(b.Month), amountFen: b.AmountFen}
	}
	return s
}

// Observe takes one billing event in partition order and returns the
// warnings it completes.
func (s *BillingState) Observe(r *warehouse.BillingRow) []warehouse.WarningRow {
	s.refresh()
	onTime := s.advance(r.TS)
	if r.Type == schemas.BillingBill {
		key, month := subscriberKey(r.MSISDN), monthIndex(r.BillMonth)
		if prev, ok := s.bills[key]; !ok || month >= prev.month {
			s.bills[key] = bill{month: month, amountFen: *r.AmountFen}
		}
		return nil
	}
	if !onTime {
		return nil
	}
	t := s.rules.Thresholds.SuspensionImminent
	var ev map[string]any
	switch r.Type {
	case schemas.BillingArrears:
		ev = map[string]any{"reason": "arrears", "arrears_fen": *r.AmountFen}
	case schemas.BillingBalance:
		balance := *r.BalanceFen
		daily := s.dailySpend(r.MSISDN)
		switch {
		case balance < t.MinBalanceFen:
			ev = map[string]any{"reason": "low_balance", "balance_fen": balance, "min_balance_fen": t.MinBalanceFen}
		case daily > 0 && float64(balance) < daily*float64(t.DaysLeft):
			ev = map[string]any{"reason": "balance_runs_out", "balance_fen": balance, "avg_daily_spend_fen": int64(daily),
				"days_left": float64(int(10*float64(balance)/daily)) / 10, "threshold_days": t.DaysLeft}
		}
	}
	if ev == nil || s.firedNear(r.MSISDN, signals.SuspensionImminent, r.TS, schemas.SeverityHigh) {
		return nil
	}
	ev["at"] = r.TS.Format(time.RFC3339)
	return []warehouse.WarningRow{s.emit(r.MSISDN, signals.SuspensionImminent, schemas.SeverityHigh, r.EventID, r.TS, r.TS, ev,
		warehouse.Provenance{Partition: r.Partition, Offset: r.Offset})}
}

// dailySpend is the latest monthly bill spread over spend_days days.
func (s *BillingState) dailySpend(msisdn string) float64 {
	b, ok := s.bills[subscriberKey(msisdn)]
	if !ok || b.amountFen <= 0 {
		return 0
	}
	return float64(b.amountFen) / float64(s.rules.Thresholds.SuspensionImminent.SpendDays)
}
