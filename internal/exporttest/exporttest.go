// Package exporttest writes small, complete output directories with export's
// public writers, for the tests of the packages that read them back (audit,
// validate) and for export's external tests. It uses nothing but export's
// public API, so what it writes is what a run writes.
package exporttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/tokenizer"
)

// F64 returns a pointer to v.
func F64(v float64) *float64 { return &v }

// SampleRows is a group of rl rows of one task, one per reward (nil: no
// reward), alternating between models m0 and m1.
func SampleRows(group string, rewards ...*float64) []export.RLRow {
	rows := make([]export.RLRow, len(rewards))
	for i, r := range rewards {
		rows[i] = export.RLRow{TaskID: group, GroupID: group + "#t0", SampleIndex: int32(i), DataSource: "ds", Model: fmt.Sprintf("m%d", i%2),
			Prompt: []export.Message{{Role: "user", Content: "q"}}, Response: strings.Repeat("x", 100), Reward: r}
		if r != nil {
			c := *r == 1
			rows[i].Correct = &c
		}
	}
	return rows
}

// SyntheticTrack is the token track of the synthetic test tokenizer
// (tokenizer/testdata/synthetic.json) in format.
func SyntheticTrack(t testing.TB, format tokenizer.Format) *export.TokenTrackConfig {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	tt, err := export.LoadTokenTrack(filepath.Join(filepath.Dir(file), "..", "..", "tokenizer", "testdata", "synthetic.json"), format)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// SFTRow builds a row from messages given as role and (text, trainable)
// pieces.
func SFTRow(id string, msgs ...[]any) export.SFTRow {
	row := export.SFTRow{ID: id, TaskID: id, Recipe: "test", DataSource: "toy"}
	for _, m := range msgs {
		msg := export.SFTMessage{Role: m[0].(string)}
		pos := int32(0)
		for k := 1; k+1 < len(m); k += 2 {
			text, tr := m[k].(string), m[k+1].(bool)
			n := int32(len([]rune(text)))
			msg.Content += text
			msg.Segments = append(msg.Segments, export.SFTSpan{Role: "seg", Start: pos, End: pos + n, Trainable: tr})
			pos += n
			if tr && n > 0 {
				msg.LossMask = 1
			}
		}
		row.Messages = append(row.Messages, msg)
	}
	return row
}

// Fixture is a small output directory: rl groups, sft rows with a token
// track, pairs and the verl prompt set.
type Fixture struct {
	RL    [][]export.RLRow
	SFT   []export.SFTRow
	Pairs []export.PairRow
	// RLMaxBytes rotates rl shards (1: one group per shard).
	RLMaxBytes int64
	// SFTRows edits the sft/4 rows after their token track is computed.
	SFTRows func([]export.SFTTokensRow)
	// RLRows edits the rl groups after their token track is computed.
	RLRows func([][]export.RLRow)
}

// GRPOGroup is a turn-0 group of task with the given rewards and their GRPO
// statistics and advantages (eps 1e-6).
func GRPOGroup(task string, rewards ...float64) []export.RLRow {
	n := float64(len(rewards))
	var mean, ss float64
	for _, r := range rewards {
		mean += r / n
	}
	for _, r := range rewards {
		ss += (r - mean) * (r - mean)
	}
	std := math.Sqrt(ss / (n - 1))
	rows := make([]export.RLRow, len(rewards))
	for i, r := range rewards {
		a := (r - mean) / (std + 1e-6)
		if std == 0 {
			a = 0
		}
		c := r == 1
		rows[i] = export.RLRow{TaskID: task, GroupID: task + "#t0", SampleIndex: int32(i), DataSource: "toy", Model: "m",
			Prompt: []export.Message{{Role: "user", Content: "q " + task}}, Response: "A: 1", Reward: F64(r), Correct: &c,
			RewardComponents:   []export.RewardComponent{{Name: "verifiable", Value: F64(r), Weight: 1}},
			AdvantageEstimator: "grpo", GroupSize: int32(len(rewards)), GroupRewardMean: F64(mean), GroupRewardStd: F64(std), Advantage: F64(a)}
	}
	return rows
}

// LaterTurn is a turn-1 group of task d holding the given episodes.
func LaterTurn(samples ...int32) []export.RLRow {
	g := GRPOGroup("d", 1, 0)
	for i := range g {
		g[i].Turn, g[i].GroupID, g[i].SampleIndex = 1, "d#t1", samples[i]
	}
	return g
}

// New is the default fixture: three rl groups of 10 rows, two sft rows and
// one pair.
func New() *Fixture {
	fx := &Fixture{
		RL: [][]export.RLRow{GRPOGroup("a", 1, 0, 1, 0), GRPOGroup("b", 1, 1, 1), GRPOGroup("c", 0.5, 0, 1)},
		SFT: []export.SFTRow{
			SFTRow("s1", []any{"user", "Add 3 and 5.", false}, []any{"assistant", "3 + 5 = 9.", false, "\nWait, that is wrong.", true, "\n3 + 5 = 8.", true}),
			SFTRow("s2", []any{"user", "Q", false}, []any{"assistant", "It is 4.", true}),
		},
		Pairs: []export.PairRow{{ID: "a#s0#t1", TaskID: "a", DataSource: "toy", Prompt: []export.Message{{Role: "user", Content: "q a"}}, Transition: "i->c", Turn: 1}},
	}
	fx.Pairs[0].SetResponses("A: 1", "A: 2")
	return fx
}

// Write writes the fixture's datasets and a complete manifest to dir, with
// token tracks when track is set.
func (fx *Fixture) Write(t testing.TB, dir string, track *export.TokenTrackConfig) {
	t.Helper()
	ctx := context.Background()
	m := &export.Manifest{Status: export.StatusComplete, Source: "test", Datasets: map[string]export.DatasetInfo{},
		Config: json.RawMessage(`{"name": "fixture", "advantage": {"estimator": "grpo", "eps": 1e-6}, "reward": {"weights": {"verifiable": 1}}}`)}
	info := func(schema string, shards []export.ShardInfo, err error) export.DatasetInfo {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		ds := export.DatasetInfo{Schema: schema, Shards: shards}
		for _, s := range shards {
			ds.Rows += s.Rows
			ds.Groups += s.Groups
		}
		return ds
	}
	rlOpts := export.ShardOptions{Dir: dir, Dataset: "rl", Schema: export.RLSchema, MaxBytes: fx.RLMaxBytes}
	for _, g := range fx.RL {
		for i := range g {
			tr := export.RLTokens{Reason: export.NoTokenizer}
			if track != nil {
				var err error
				if g[i].Messages != nil {
					tr, err = track.RLTrackMessages(g[i].Messages, len(g[i].Prompt), g[i].Tools, g[i].Error != nil)
				} else {
					tr, err = track.RLTrack(g[i].Prompt, g[i].Response, g[i].Error != nil)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			tr.Apply(&g[i])
		}
	}
	if track != nil {
		rlOpts.Metadata = track.Metadata()
	}
	for _, g := range fx.RL {
		export.SetResponseMessages(g)
	}
	if fx.RLRows != nil {
		fx.RLRows(fx.RL)
	}
	rl, _ := export.NewShardWriter[export.RLRow](rlOpts)
	verl, _ := export.NewVerlPrompts(export.ShardOptions{Dir: dir}, "math")
	for _, g := range fx.RL {
		if err := rl.WriteGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := verl.WriteRLGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	shards, err := rl.Flush()
	m.Datasets["rl"] = info(export.RLSchema, shards, err)
	m.Rewards = Summary(fx.RL)
	shards, err = verl.Flush()
	m.Datasets[export.VerlDataset] = info(export.VerlSchema, shards, err)
	if track != nil && fx.SFTRows != nil {
		// Rows edited after their token track: written directly.
		var rows []export.SFTTokensRow
		for _, r := range fx.SFT {
			tr, err := track.Row(r)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, tr)
		}
		fx.SFTRows(rows)
		w, _ := export.NewShardWriter[export.SFTTokensRow](export.ShardOptions{Dir: dir, Dataset: "sft", Schema: export.SFTTokensSchema, Metadata: track.Metadata()})
		for _, r := range rows {
			if err := w.WriteGroup(ctx, []export.SFTTokensRow{r}); err != nil {
				t.Fatal(err)
			}
		}
		shards, err = w.Flush()
		m.Datasets["sft"] = info(export.SFTTokensSchema, shards, err)
	} else {
		w, _ := export.NewSFTWriter(export.ShardOptions{Dir: dir}, track)
		for _, r := range fx.SFT {
			if err := w.WriteGroup(ctx, []export.SFTRow{r}); err != nil {
				t.Fatal(err)
			}
		}
		shards, err = w.Flush()
		m.Datasets["sft"] = info(w.Schema(), shards, err)
	}
	pw, _ := export.NewShardWriter[export.PairRow](export.ShardOptions{Dir: dir, Dataset: "pairs", Schema: export.PairsSchema})
	if err := pw.WriteGroup(ctx, fx.Pairs); err != nil {
		t.Fatal(err)
	}
	shards, err = pw.Flush()
	m.Datasets["pairs"] = info(export.PairsSchema, shards, err)
	if err := export.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// WriteFailures writes a failures record of the given lines and lists it in
// the manifest with count.
func WriteFailures(t testing.TB, dir string, count int64, lines ...string) {
	t.Helper()
	b := []byte(strings.Join(lines, "\n") + "\n")
	if err := os.WriteFile(filepath.Join(dir, export.FailuresName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	EditManifest(t, dir, func(m *export.Manifest) {
		m.Failures = &export.FailuresInfo{Path: export.FailuresName, Count: count, SHA256: hex.EncodeToString(sum[:])}
	})
}

// Summary is the reward summary's counts of the rl groups.
func Summary(groups [][]export.RLRow) export.RewardSummary {
	s := export.RewardSummary{FinishReason: map[string]int64{}, Groups: int64(len(groups))}
	for _, g := range groups {
		for _, r := range g {
			s.Rows++
			if r.Error != nil {
				s.Failed++
			}
			if r.Reward == nil {
				s.NullRewards++
			}
			if r.Correct != nil {
				s.Graded++
			}
			if r.FinishReason != nil {
				s.FinishReason[*r.FinishReason]++
			}
		}
	}
	return s
}

// EditManifest rewrites dir's manifest after f edits it.
func EditManifest(t testing.TB, dir string, f func(*export.Manifest)) {
	t.Helper()
	m, err := export.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	f(m)
	if err := export.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}
