package audit

import (
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/redraft/redraft/export"
)

// Slice is the reward summary of the rows sharing one key (a data source, a
// model).
type Slice struct {
	Key         string   `json:"key"`
	Rows        int64    `json:"rows"`
	Groups      int64    `json:"groups"`
	NullRewards int64    `json:"null_rewards"`
	RewardMean  *float64 `json:"reward_mean"`
	RewardStd   *float64 `json:"reward_std"`
	Graded      int64    `json:"graded"`
	Accuracy    *float64 `json:"accuracy"`
}

// Report summarises an rl dataset read back from its shards.
type Report struct {
	Dir      string   `json:"dir"`
	Shards   int      `json:"shards"`
	Schema   string   `json:"schema"`
	Overall  Slice    `json:"overall"`
	BySource []*Slice `json:"by_data_source"`
	ByModel  []*Slice `json:"by_model"`
	// ZeroStdGroups counts groups whose present rewards are all equal (or
	// fewer than two): they carry no learning signal.
	ZeroStdGroups int64    `json:"zero_std_groups"`
	FracZeroStd   *float64 `json:"frac_reward_zero_std"`
	Histogram     []Bin    `json:"reward_histogram"`
	// Recipe names the run (the manifest's config name, else its source).
	Recipe string `json:"recipe"`
	// ByTurn is the summary per turn of a correction episode, TurnDeltas
	// the change between consecutive turns.
	ByTurn     []*Slice    `json:"by_turn"`
	TurnDeltas []TurnDelta `json:"turn_deltas"`
	// MetricGroups names the metric groups of each slice; Slices holds them
	// for all rows, then per data source, turn and model.
	MetricGroups []string      `json:"metric_groups"`
	Slices       []SliceReport `json:"slices"`
	// Agents audits the agent episodes (nil: none; see AddAgents).
	Agents *AgentReport `json:"agents,omitempty"`
	// Tokens counts the token tracks' sources and checks (nil: no row has
	// the engine's ids; see AddTokens).
	Tokens *TokenReport `json:"tokens,omitempty"`
}

// Bin is one bar of the reward histogram: rewards in [Lo, Hi) (the last bin
// includes Hi). For few distinct values, each value is its own bin (Lo = Hi).
type Bin struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int64   `json:"count"`
}

// RLShards lists the rl shards of an output directory: those its manifest
// lists, in order, or every rl shard file in name order when it has none.
func RLShards(dir string) ([]string, error) {
	// A manifest lists the committed shards (a merged run's are under its
	// parts' directories).
	if m, err := export.ReadManifest(dir); err == nil {
		var paths []string
		for _, s := range m.Datasets["rl"].Shards {
			paths = append(paths, filepath.Join(dir, filepath.FromSlash(s.Path)))
		}
		return paths, nil
	}
	paths, err := filepath.Glob(filepath.Join(dir, "data", "rl", "*.parquet"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// Dir reads every rl shard under dir with Arrow and summarises it, agent
// episodes included.
func Dir(ctx context.Context, dir string) (*Report, error) {
	a, err := Path(ctx, dir, Options{})
	if err != nil {
		return nil, err
	}
	if err := a.AddAgents(ctx, dir, 0); err != nil {
		return nil, err
	}
	if err := a.AddTokens(ctx, dir); err != nil {
		return nil, err
	}
	return a, nil
}

// WriteText prints the audit for a terminal.
func (a *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "audit of %s: %d shard(s), schema %s\n", a.Dir, a.Shards, a.Schema)
	fmt.Fprintf(w, "rows %d, groups %d, null rewards %d", a.Overall.Rows, a.Overall.Groups, a.Overall.NullRewards)
	if a.FracZeroStd != nil {
		fmt.Fprintf(w, ", zero-variance groups %d (frac_reward_zero_std %.3f)", a.ZeroStdGroups, *a.FracZeroStd)
	}
	fmt.Fprintln(w)
	table := func(title string, rows []*Slice) {
		fmt.Fprintf(w, "\n%-24s %8s %7s %11s %7s %9s\n", title, "rows", "groups", "reward mean", "std", "accuracy")
		for _, s := range append([]*Slice{}, rows...) {
			fmt.Fprintf(w, "%-24s %8d %7d %11s %7s %9s\n", s.Key, s.Rows, s.Groups, fmtF(s.RewardMean, "%.4f"), fmtF(s.RewardStd, "%.4f"), fmtPct(s.Accuracy))
		}
	}
	all := a.Overall
	all.Key = "all"
	table("by data_source", append(a.BySource, &all))
	table("by model", a.ByModel)
	fmt.Fprintf(w, "\nreward histogram\n")
	var max int64
	for _, b := range a.Histogram {
		if b.Count > max {
			max = b.Count
		}
	}
	total := a.Overall.Rows - a.Overall.NullRewards
	for _, b := range a.Histogram {
		label := fmt.Sprintf("%g", b.Lo)
		if b.Lo != b.Hi {
			label = fmt.Sprintf("[%.3g, %.3g)", b.Lo, b.Hi)
		}
		bar := strings.Repeat("█", int(math.Round(40*float64(b.Count)/float64(max))))
		fmt.Fprintf(w, "%16s | %-40s %d (%.1f%%)\n", label, bar, b.Count, 100*float64(b.Count)/float64(total))
	}
	a.writeDetails(w)
	a.writeAgents(w)
	a.writeTokens(w)
}

func fmtF(v *float64, f string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(f, *v)
}

func fmtPct(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100**v)
}
