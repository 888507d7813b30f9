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
		{"grpo", AdvantageConfig{Estimator: GRPO, Eps: 1e-6}, vals(1.0, 0.0, 0.0, 1.0),
			vals(0.5/(s+1e-6), -0.5/(s+1e-6), -0.5/(s+1e-6), 0.5/(s+1e-6)), 4, false},
		{"grpo eps matters", AdvantageConfig{Estimator: GRPO, Eps: 1e-4}, vals(1.0, 0.0),
			vals(0.5/(math.Sqrt(0.5)+1e-4), -0.5/(math.Sqrt(0.5)+1e-4)), 2, false},
		{"dr_grpo", AdvantageConfig{Estimator: DrGRPO, Eps: 1e-6}, vals(1.0, 0.0, 0.0, 0.0),
			vals(0.75, -0.25, -0.25, -0.25), 4, false},
		{"rloo", AdvantageConfig{Estimator: RLOO, Eps: 0}, vals(1.0, 0.0, 0.0, 0.0),
			vals(1.0, -1.0/3, -1.0/3, -1.0/3), 4, false},
		{"all equal 0.9 gets exactly 0", AdvantageConfig{Estimator: GRPO, Eps: 1e-6}, vals(0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9),
			vals(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 7, true},
		{"all equal rloo", AdvantageConfig{Estimator: RLOO, Eps: 0}, vals(0.1, 0.1, 0.1),
			vals(0.0, 0.0, 0.0), 3, true},
		{"one member gets 0", AdvantageConfig{Estimator: GRPO, Eps: 1e-6}, vals(1.0),
			vals(0.0), 1, true},
		{"null left out of the statistics", AdvantageConfig{Estimator: DrGRPO, Eps: 0}, vals(1.0, nil, 0.0),
			vals(0.5, nil, -0.5), 2, false},
		{"only one present", AdvantageConfig{Estimator: RLOO, Eps: 0}, vals(nil, 1.0, nil),
			vals(nil, 0.0, nil), 1, true},
		{"all null", AdvantageConfig{Estimator: GRPO, Eps: 1e-6}, vals(nil, nil),
			vals(nil, nil), 0, true},
		{"reinforce_pp group part is r - m", AdvantageConfig{Estimator: ReinforcePPBaseline}, vals(1.0, 0.0, 0.0, 0.0),
			vals(0.75, -0.25, -0.25, -0.25), 4, false},
		{"passk best gets r_max - r_second", AdvantageConfig{Estimator: PassK}, vals(0.2, 0.9, nil, 0.5),
			vals(0.0, 0.4, nil, 0.0), 3, false},
		{"passk tie: first best gets 0", AdvantageConfig{Estimator: PassK}, vals(1.0, 0.0, 1.0),
			vals(0.0, 0.0, 0.0), 3, false},
		{"passk all equal", AdvantageConfig{Estimator: PassK}, vals(1.0, 1.0),
			vals(0.0, 0.0), 2, true},
		{"passk one member", AdvantageConfig{Estimator: PassK}, vals(nil, 1.0),
			vals(nil, 0.0), 1, true},
		{"dr_grpo one member", AdvantageConfig{Estimator: DrGRPO}, vals(0.3),
			vals(0.0), 1, true},
		{"rloo one member", AdvantageConfig{Estimator: RLOO}, vals(0.3),
			vals(0.0), 1, true},
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
	for _, c := range []AdvantageConfig{{Estimator: "ppo"}, {Estimator: GRPO, Eps: -1}, {Estimator: GRPO, Eps: math.NaN()},
		{Estimator: ReinforcePPBaseline, Whiten: "tokens", BatchGroups: 8}, {Estimator: ReinforcePPBaseline, Whiten: WhitenToken}} {
		if c.Validate() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (AdvantageConfig{Estimator: GRPO, Eps: 1e-6}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestWhitenBatch(t *testing.T) {
	t.Run("sequence weighted", func(t *testing.T) {
		v := vals(1.0, nil, 3.0, 5.0)
		st := WhitenBatch(v, []float64{1, 1, 1, 1}, 0)
		// mean 3, unbiased var 4, std 2.
		if st.Mean != 3 || st.Std != 2 || st.Weight != 3 {
			t.Fatalf("stats %+v", st)
		}
		if *v[0] != -1 || v[1] != nil || *v[2] != 0 || *v[3] != 1 {
			t.Errorf("whitened %v %v %v", *v[0], *v[2], *v[3])
		}
	})
	t.Run("token weighted", func(t *testing.T) {
		v := vals(1.0, 0.0)
		st := WhitenBatch(v, []float64{3, 1}, 1e-8)
		// Tokens: 1,1,1,0 -> mean 0.75, unbiased var (3*0.0625+0.5625)/3 = 0.25.
		if math.Abs(st.Mean-0.75) > 1e-15 || math.Abs(st.Std-0.5) > 1e-15 || st.Weight != 4 {
			t.Fatalf("stats %+v", st)
		}
		if want := 0.25 / math.Sqrt(0.25+1e-8); math.Abs(*v[0]-want) > 1e-12 {
			t.Errorf("v0 = %v, want %v", *v[0], want)
		}
	})
	t.Run("all equal gives exactly 0", func(t *testing.T) {
		v := vals(0.9, 0.9, 0.9)
		WhitenBatch(v, []float64{5, 7, 9}, 1e-8)
		for _, x := range v {
			if *x != 0 {
				t.Errorf("got %v", *x)
			}
		}
	})
	t.Run("empty", func(t *testing.T) {
		if st := WhitenBatch(vals(nil), []float64{1}, 1e-8); st.Weight != 0 {
			t.Errorf("%+v", st)
		}
	})
}

// TestDefaults pins the defaults that run configurations and redraft
// advantages share: verl's epsilons.
func TestDefaults(t *testing.T) {
	for e, want := range map[Estimator]float64{GRPO: 1e-6, DrGRPO: 1e-6, RLOO: 1e-6, PassK: 1e-6, ReinforcePPBaseline: 1e-8} {
		if got := DefaultEps(e); got != want {
			t.Errorf("DefaultEps(%s) = %g, want %g", e, got, want)
		}
	}
	cfg := AdvantageConfig{Estimator: DefaultEstimator, Eps: DefaultEps(DefaultEstimator), Whiten: DefaultWhiten, BatchGroups: DefaultBatchGroups}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
}
