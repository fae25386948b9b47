package realtime

import (
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// CRMState evaluates port_out and business_op for one partition of
// crm.events. Each such event is its own warning: these are rare and each
// one matters.
type CRMState struct {
	base
}

// NewCRMState restores a partition's state (its watermark).
func NewCRMState(rules Rules, topic string, watermark time.Time) *CRMState {
	return &CRMState{base: newBase(rules, topic, watermark, nil)}
}

// Observe takes one CRM event in partition order and returns the warnings it
// completes.
func (s *CRMState) Observe(r *warehouse.CRMRow) []warehouse.WarningRow {
	s.refresh()
	if !s.advance(r.TS) {
		return nil
	}
	var signal string
	var sev schemas.Severity
	switch r.Type {
	case schemas.CRMPortOutQuery, schemas.CRMDeactivate:
		signal, sev = signals.PortOut, schemas.SeverityCritical
	case schemas.CRMPreCancel, schemas.CRMLossReport, schemas.CRMSuspendRequest:
		signal, sev = signals.BusinessOp, schemas.SeverityHigh
	default:
		return nil
	}
	ev := map[string]any{"event": string(r.Type), "event_id": r.EventID, "at": r.TS.Format(time.RFC3339)}
	return []warehouse.WarningRow{s.emit(r.MSISDN, signal, sev, r.EventID, r.TS, r.TS, ev,
		warehouse.Provenance{Partition: r.Partition, Offset: r.Offset})}
}
