package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/schemas"
)

type latencyConfig struct {
	conn                         kafkaconn.Conn
	cdrTopic, crmTopic, warnings string
	rate                         float64
	seconds, portOutEvery        int
	loc                          *time.Location
	seed                         int64
}

type latencyResult struct {
	sent, received, events int
	offered                float64
	duration               time.Duration
	p50, p99, max          time.Duration
}

// latencyDrain is how long the phase waits for the last warnings after the
// offered load ends.
const latencyDrain = 30 * time.Second

// measureLatency offers the pipeline a fixed rate of events for the given
// seconds, in slices every 10 ms: ordinary MT calls of random subscribers,
// and every portOutEvery-th event a PORT_OUT_QUERY of a fresh subscriber,
// which fires port_out (critical) at once. Each such event's latency is
// from just before the write that carries it to its warning being read from
// the warnings topic (by readers that start at the topic's end).
func measureLatency(ctx context.Context, cfg latencyConfig) (latencyResult, error) {
	var res latencyResult
	client := cfg.conn.Client(10 * time.Second)
	ends, err := endOffsets(ctx, client, []string{cfg.warnings})
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	var lat []time.Duration
	rctx, stopReaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopReaders(); wg.Wait() }()
	for p, end := range ends[cfg.warnings] {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.conn.Brokers, Dialer: cfg.conn.Dialer(), Topic: cfg.warnings, Partition: p,
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 50 * time.Millisecond})
		if err := r.SetOffset(end); err != nil {
			r.Close()
			return res, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.FetchMessage(rctx)
				if err != nil {
					return
				}
				now := time.Now()
				var w struct {
					MSISDN string `json:"msisdn"`
					Signal string `json:"signal"`
				}
				if json.Unmarshal(m.Value, &w) != nil {
					continue
				}
				mu.Lock()
				if t, ok := sentAt[w.MSISDN]; ok && w.Signal == "port_out" {
					lat = append(lat, now.Sub(t))
					delete(sentAt, w.MSISDN)
				}
				mu.Unlock()
			}
		}()
	}

	w := &kafka.Writer{Addr: kafka.TCP(cfg.conn.Brokers...), Transport: cfg.conn.Transport(), Balancer: kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 1000, BatchTimeout: time.Millisecond, WriteTimeout: 10 * time.Second}
	defer w.Close()
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), 7))
	chunk := max(int(cfg.rate/100), 1)
	every := max(cfg.portOutEvery, 1)
	start := time.Now()
	stopAt := start.Add(time.Duration(cfg.seconds) * time.Second)
	batch := make([]kafka.Message, 0, chunk)
	var ports []string
	for time.Now().Before(stopAt) {
		due := start.Add(time.Duration(float64(res.events) / cfg.rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(d):
			}
		}
		batch, ports = batch[:0], ports[:0]
		now := time.Now().In(cfg.loc).Truncate(time.Second)
		for range chunk {
			res.events++
			if res.events%every == 0 {
				msisdn := strconv.Itoa(14_700_000_000 + res.sent)
				res.sent++
				ports = append(ports, msisdn)
				v, _ := json.Marshal(schemas.CRMEvent{EventID: "bench-r-" + msisdn, MSISDN: msisdn, Type: schemas.CRMPortOutQuery, TS: now})
				batch = append(batch, kafka.Message{Topic: cfg.crmTopic, Key: []byte(msisdn), Value: v})
				continue
			}
			msisdn := strconv.Itoa(13_800_000_000 + rng.IntN(1_000_000))
			v, _ := json.Marshal(schemas.CDR{EventID: "bench-c-" + strconv.Itoa(res.events), MSISDN: msisdn,
				Peer: strconv.Itoa(13_900_000_000 + rng.IntN(1_000_000)), Direction: schemas.DirectionMT, StartTime: now,
				DurationS: int64(10 + rng.IntN(300)), PeerNetwork: schemas.NetworkCMCC, CellID: "460-00-5712-3301"})
			batch = append(batch, kafka.Message{Topic: cfg.cdrTopic, Key: []byte(msisdn), Value: v})
		}
		t := time.Now()
		mu.Lock()
		for _, m := range ports {
			sentAt[m] = t
		}
		mu.Unlock()
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return res, fmt.Errorf("produce the offered load: %w", err)
		}
	}
	res.duration = time.Since(start)
	res.offered = float64(res.events) / res.duration.Seconds()
	deadline := time.Now().Add(latencyDrain)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= res.sent {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopReaders()
	wg.Wait()
	res.received = len(lat)
	if res.received == 0 {
		return res, fmt.Errorf("none of the %d port_out warnings arrived within %s", res.sent, latencyDrain)
	}
	slices.Sort(lat)
	res.p50 = lat[(len(lat)-1)/2]
	res.p99 = lat[max((len(lat)*99+99)/100-1, 0)]
	res.max = lat[len(lat)-1]
	return res, nil
}
