package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Active is an alert that no one has acknowledged yet, as kept in the
// active-alerts bucket (JetStream KV, key = triage ID). It holds what a
// periodic re-send needs: Alertmanager forgets an alert that is not sent
// again, and the set must outlive this process and be shared by the fleet.
type Active struct {
	TriageID string          `json:"triage_id"`
	AlertID  string          `json:"alert_id"`
	Priority string          `json:"priority"`
	ModelSet string          `json:"model_set"`
	Seq      uint64          `json:"seq"`
	Since    time.Time       `json:"since"` // when the alert was stored
	Alert    json.RawMessage `json:"alert"` // the alert message as stored
}

// claimPrefix names the keys the fleet's periodic jobs coordinate on; they
// cannot clash with triage IDs (hex).
const claimPrefix = "claim."

// ActiveSet is the shared set of active alerts.
type ActiveSet struct{ kv jetstream.KeyValue }

// Put records an alert as active (idempotent).
func (s *ActiveSet) Put(ctx context.Context, a Active) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, a.TriageID, b); err != nil {
		return fmt.Errorf("record active alert: %w", err)
	}
	return nil
}

// Resolve removes an alert from the set (idempotent).
func (s *ActiveSet) Resolve(ctx context.Context, triageID string) error {
	if err := s.kv.Delete(ctx, triageID); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("resolve active alert: %w", err)
	}
	return nil
}

// Get returns one active alert, or jetstream.ErrKeyNotFound.
func (s *ActiveSet) Get(ctx context.Context, triageID string) (Active, error) {
	var a Active
	e, err := s.kv.Get(ctx, triageID)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return a, fmt.Errorf("decode active alert: %w", err)
	}
	return a, nil
}

// List returns every active alert.
func (s *ActiveSet) List(ctx context.Context) ([]Active, error) {
	kl, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list active alerts: %w", err)
	}
	defer kl.Stop()
	var out []Active
	for k := range kl.Keys() {
		if strings.HasPrefix(k, claimPrefix) {
			continue
		}
		a, err := s.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // resolved meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, ctx.Err()
}

// claim lets one daemon of a fleet run a periodic job (a re-send) per
// period: it succeeds when the job's last run is at least every old, by a
// compare-and-set on the claim key, so two daemons racing get one winner.
func (s *ActiveSet) claim(ctx context.Context, job string, every time.Duration, now time.Time) (bool, error) {
	key := claimPrefix + job
	val := []byte(now.UTC().Format(time.RFC3339Nano))
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		_, err = s.kv.Create(ctx, key, val)
		return err == nil, ignoreConflict(err)
	}
	if err != nil {
		return false, fmt.Errorf("read claim %s: %w", job, err)
	}
	last, perr := time.Parse(time.RFC3339Nano, string(e.Value()))
	// A little slack so jitter between daemons' tickers does not make the
	// job skip whole periods.
	if perr == nil && now.Sub(last) < every-every/10 {
		return false, nil
	}
	_, err = s.kv.Update(ctx, key, val, e.Revision())
	return err == nil, ignoreConflict(err)
}

func ignoreConflict(err error) error {
	var apiErr *jetstream.APIError
	if err == nil || errors.Is(err, jetstream.ErrKeyExists) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence) {
		return nil
	}
	return err
}
