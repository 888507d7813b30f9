package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/redraft/redraft/audit"
	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/internal/exporttest"
)

var (
	f64        = exporttest.F64
	sampleRows = exporttest.SampleRows
)

func TestAudit(t *testing.T) {
	dir := t.TempDir()
	w, _ := export.NewShardWriter[export.RLRow](export.ShardOptions{Dir: dir, Dataset: "rl", Schema: export.RLSchema, MaxBytes: 1})
	ctx := context.Background()
	w.WriteGroup(ctx, sampleRows("a", f64(1), f64(0), f64(1), f64(0))) // signal
	w.WriteGroup(ctx, sampleRows("b", f64(1), f64(1), f64(1), f64(1))) // zero variance
	w.WriteGroup(ctx, sampleRows("c", f64(0), nil, nil, nil))          // one present: zero variance
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	a, err := audit.Dir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Shards != 3 || a.Schema != export.RLSchema || a.Overall.Rows != 12 || a.Overall.Groups != 3 || a.Overall.NullRewards != 3 {
		t.Fatalf("audit: %+v", a.Overall)
	}
	if a.ZeroStdGroups != 2 || *a.FracZeroStd != 2.0/3 {
		t.Errorf("zero-variance groups %d frac %v", a.ZeroStdGroups, *a.FracZeroStd)
	}
	if *a.Overall.RewardMean != 6.0/9 || *a.Overall.Accuracy != 6.0/9 {
		t.Errorf("mean %v accuracy %v", *a.Overall.RewardMean, *a.Overall.Accuracy)
	}
	if len(a.ByModel) != 2 || a.ByModel[0].Key != "m0" || a.ByModel[0].Rows != 6 || a.ByModel[0].Groups != 3 {
		t.Errorf("by model: %+v", a.ByModel[0])
	}
	if len(a.Histogram) != 2 || a.Histogram[0].Count != 3 || a.Histogram[1].Count != 6 {
		t.Errorf("histogram: %+v", a.Histogram)
	}
	var buf bytes.Buffer
	a.WriteText(&buf)
	for _, want := range []string{"rows 12, groups 3, null rewards 3", "frac_reward_zero_std 0.667", "66.7%"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text audit lacks %q:\n%s", want, buf.String())
		}
	}
}

// Audit fails, naming both numbers, when the shards hold fewer rows than the
// manifest lists.
func TestAuditChecksManifestRows(t *testing.T) {
	dir := t.TempDir()
	exporttest.New().Write(t, dir, nil)
	if _, err := audit.Path(context.Background(), dir, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	exporttest.EditManifest(t, dir, func(m *export.Manifest) { ds := m.Datasets["rl"]; ds.Rows = 11; m.Datasets["rl"] = ds })
	if _, err := audit.Path(context.Background(), dir, audit.Options{}); err == nil || !strings.Contains(err.Error(), "audit read 10 rl rows, the manifest lists 11") {
		t.Errorf("audit: %v", err)
	}
}

// A run whose lengths are completion tokens is not compared with one whose
// lengths are response characters (recorded rollouts without token counts):
// each mean is its own metric, and a delta only ever subtracts like from like.
func TestCompareLengthUnits(t *testing.T) {
	slice := func(unit string, mean float64) audit.SliceReport {
		return audit.SliceReport{Dimension: audit.DimAll, Key: "all", Rows: 4, Length: audit.LengthReport{Unit: unit, Mean: f64(mean)}}
	}
	report := func(dir string, s audit.SliceReport) *audit.Report {
		return &audit.Report{Dir: dir, Overall: audit.Slice{Key: "all", Rows: s.Rows}, Slices: []audit.SliceReport{s}}
	}
	metrics := func(c *audit.Comparison) map[string]audit.MetricDelta {
		out := map[string]audit.MetricDelta{}
		for _, m := range c.Slices[0].Metrics {
			out[m.Name] = m
		}
		return out
	}
	chars, tokens := report("chars", slice("response_chars", 281.4)), report("tokens", slice("completion_tokens", 95))
	m := metrics(audit.Compare(chars, tokens))
	if _, ok := m["length_mean"]; ok {
		t.Error("a length_mean metric without a unit is still compared")
	}
	if c := m["length_mean_chars"]; c.A == nil || *c.A != 281.4 || c.B != nil || c.Delta != nil {
		t.Errorf("length_mean_chars: %+v", c)
	}
	if k := m["length_mean_tokens"]; k.A != nil || k.B == nil || *k.B != 95 || k.Delta != nil {
		t.Errorf("length_mean_tokens: %+v", k)
	}
	var buf bytes.Buffer
	audit.Compare(chars, tokens).WriteText(&buf)
	if strings.Contains(buf.String(), "-186.4") {
		t.Errorf("characters subtracted from tokens:\n%s", buf.String())
	}
	// Like units still give a delta; a slice mixing the two has neither.
	if k := metrics(audit.Compare(report("a", slice("completion_tokens", 90)), tokens))["length_mean_tokens"]; k.Delta == nil || *k.Delta != 5 {
		t.Errorf("tokens against tokens: %+v", k)
	}
	mixed := metrics(audit.Compare(report("mixed", slice("mixed", 200)), tokens))
	if mixed["length_mean_tokens"].A != nil || mixed["length_mean_chars"].A != nil {
		t.Errorf("a mixed-unit mean is compared: %+v %+v", mixed["length_mean_tokens"], mixed["length_mean_chars"])
	}
}
