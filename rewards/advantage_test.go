package rewards

import (
	"math"
	"testing"
)

func fp(v float64) *float64 { return &v }

func vals(xs ...any) []*float64 {
	out := make([]*float64, len(xs))
	for i, x := range xs {
		if x != nil {
			out[i] = fp(float64(x.(float64)))
		}
	}
	return out
}

func TestGroupAdvantages(t *testing.T) {
	// Group {1, 0, 0, 1}: mean 0.5, unbiased std sqrt(1/3).
	s := math.Sqrt(1.0 / 3)
	tests := []struct {
		name    string
		cfg     AdvantageConfig
		rewards []*float64
		want    []*float64
		n       int
		zero    bool
	}{
		{"grpo", AdvantageConfig{GRPO, 1e-6}, vals(1.0, 0.0, 0.0, 1.0),
			vals(0.5/(s+1e-6), -0.5/(s+1e-6), -0.5/(s+1e-6), 0.5/(s+1e-6)), 4, false},
		{"grpo eps matters", AdvantageConfig{GRPO, 1e-4}, vals(1.0, 0.0),
			vals(0.5/(math.Sqrt(0.5)+1e-4), -0.5/(math.Sqrt(0.5)+1e-4)), 2, false},
		{"dr_grpo", AdvantageConfig{DrGRPO, 1e-6}, vals(1.0, 0.0, 0.0, 0.0),
			vals(0.75, -0.25, -0.25, -0.25), 4, false},
		{"rloo", AdvantageConfig{RLOO, 0}, vals(1.0, 0.0, 0.0, 0.0),
			vals(1.0, -1.0/3, -1.0/3, -1.0/3), 4, false},
		{"all equal 0.9 gets exactly 0", AdvantageConfig{GRPO, 1e-6}, vals(0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9),
			vals(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 7, true},
		{"all equal rloo", AdvantageConfig{RLOO, 0}, vals(0.1, 0.1, 0.1),
			vals(0.0, 0.0, 0.0), 3, true},
		{"one member gets 0", AdvantageConfig{GRPO, 1e-6}, vals(1.0),
			vals(0.0), 1, true},
		{"null left out of the statistics", AdvantageConfig{DrGRPO, 0}, vals(1.0, nil, 0.0),
			vals(0.5, nil, -0.5), 2, false},
		{"only one present", AdvantageConfig{RLOO, 0}, vals(nil, 1.0, nil),
			vals(nil, 0.0, nil), 1, true},
		{"all null", AdvantageConfig{GRPO, 1e-6}, vals(nil, nil),
			vals(nil, nil), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st := GroupAdvantages(tt.cfg, tt.rewards)
			if st.N != tt.n || st.ZeroVariance != tt.zero {
				t.Fatalf("stats = %+v, want N=%d zero=%v", st, tt.n, tt.zero)
			}
			for i := range tt.want {
				switch {
				case tt.want[i] == nil && got[i] != nil:
					t.Errorf("adv[%d] = %v, want nil", i, *got[i])
				case tt.want[i] != nil && got[i] == nil:
					t.Errorf("adv[%d] = nil, want %v", i, *tt.want[i])
				case tt.want[i] != nil && math.Abs(*got[i]-*tt.want[i]) > 1e-12:
					t.Errorf("adv[%d] = %.15g, want %.15g", i, *got[i], *tt.want[i])
				}
			}
			// All-equal groups must be exactly zero, not merely close.
			if tt.zero {
				for i, a := range got {
					if a != nil && *a != 0 {
						t.Errorf("zero-variance group: adv[%d] = %g", i, *a)
					}
				}
			}
		})
	}
}

func TestAdvantageConfigValidate(t *testing.T) {
	for _, c := range []AdvantageConfig{{"ppo", 0}, {GRPO, -1}, {GRPO, math.NaN()}} {
		if c.Validate() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (AdvantageConfig{GRPO, 1e-6}).Validate(); err != nil {
		t.Error(err)
	}
}
