package eval

import (
	"encoding/json"
	"math"
)

// JSON has no NaN or infinity: undefined values (a sensitivity without
// positives, an AUC without both classes) are written as null.

func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// MarshalJSON implements json.Marshaler.
func (p Proportion) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Value *float64 `json:"value"`
		Low   *float64 `json:"low"`
		High  *float64 `json:"high"`
		K     int      `json:"k"`
		N     int      `json:"n"`
	}{finite(p.Value), finite(p.Low), finite(p.High), p.K, p.N})
}

// MarshalJSON implements json.Marshaler.
func (p Point) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Threshold *float64 `json:"threshold"`
		X         *float64 `json:"x"`
		Y         *float64 `json:"y"`
	}{finite(p.Threshold), finite(p.X), finite(p.Y)})
}

// MarshalJSON implements json.Marshaler.
func (s SourceReport) MarshalJSON() ([]byte, error) {
	type plain SourceReport
	return json.Marshal(struct {
		plain
		AUC *float64 `json:"auc"`
	}{plain(s), finite(s.AUC)})
}

// MarshalJSON implements json.Marshaler.
func (m ModelReport) MarshalJSON() ([]byte, error) {
	type plain ModelReport
	return json.Marshal(struct {
		plain
		AUC     *float64 `json:"auc"`
		AUCLow  *float64 `json:"auc_ci_low"`
		AUCHigh *float64 `json:"auc_ci_high"`
		AP      *float64 `json:"average_precision"`
	}{plain(m), finite(m.AUC), finite(m.AUCLow), finite(m.AUCHigh), finite(m.AP)})
}
