package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redraft/redraft/internal/doccheck"
	"github.com/redraft/redraft/rollout/fakeserver"
)

// TestRecipeDocRows runs the presets whose rows the recipe pages show, as
// docs/recipes/README.md says: each with 4 samples per task against the
// in-process server on three toy tasks ("What is 20+20?" and two more), the
// server answering correctly for even seeds; and compares each page's row with the row of the same
// identity, under the docs' abbreviations (doccheck.Match).
func TestRecipeDocRows(t *testing.T) {
	for _, tc := range []struct{ page, preset, dataset string }{
		{"grpo.md", "grpo.yaml", "rl"},
		{"score.md", "score.yaml", "rl"},
		{"rise.md", "rise.yaml", "rl"},
		{"critique-grpo.md", "critique-grpo.yaml", "rl"},
		{"scl-pairs.md", "scl-pairs.yaml", "pairs"},
		{"consensus.md", "consensus.yaml", "rl"},
	} {
		t.Run(tc.page, func(t *testing.T) {
			page := "docs/recipes/" + tc.page
			block := doccheck.One(t, "..", page, "TestRecipeDocRows")
			cfg, err := LoadConfig(filepath.Join("..", "configs", "presets", tc.preset))
			if err != nil {
				t.Fatal(err)
			}
			answers := map[string]int{"What is 20+20?": 40, "What is 3+4?": 7, "What is 6+9?": 15}
			var tasks strings.Builder
			for i, q := range []string{"What is 20+20?", "What is 3+4?", "What is 6+9?"} {
				fmt.Fprintf(&tasks, `{"id": "toy-%d", "prompt": %q, "reference": %d, "data_source": "toy"}`+"\n", i, q, answers[q])
			}
			path := filepath.Join(t.TempDir(), "tasks.jsonl")
			if err := os.WriteFile(path, []byte(tasks.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			srv := fakeserver.New(fakeserver.AnswerBySeed(answers))
			defer srv.Close()
			cfg.Source.Path, cfg.Endpoint.BaseURL, cfg.Output.Dir = path, srv.BaseURL(), t.TempDir()
			cfg.Sampling.N = 4 // G = 4, as the page says
			if _, err := Execute(context.Background(), cfg, JobOptions{}); err != nil {
				t.Fatal(err)
			}
			if tc.dataset == "pairs" {
				checkDocRow(t, page, block, readPairs(t, cfg.Output.Dir))
			} else {
				checkDocRow(t, page, block, readAll(t, cfg.Output.Dir))
			}
		})
	}
}

// checkDocRow finds the row a page's JSON block shows among rows, by its
// "id" or its "group_id" and "sample_index", and compares the two under the
// docs' abbreviations (doccheck.Match).
func checkDocRow[R any](t *testing.T, page, block string, rows []R) {
	t.Helper()
	var id struct {
		ID          *string `json:"id"`
		GroupID     *string `json:"group_id"`
		SampleIndex *int32  `json:"sample_index"`
	}
	if err := json.Unmarshal([]byte(block), &id); err != nil {
		t.Fatalf("%s: %v", page, err)
	}
	if id.ID == nil && (id.GroupID == nil || id.SampleIndex == nil) {
		t.Fatalf("%s: the row shows neither its id nor its group_id and sample_index", page)
	}
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ID          *string `json:"id"`
			GroupID     *string `json:"group_id"`
			SampleIndex *int32  `json:"sample_index"`
		}
		json.Unmarshal(b, &got)
		if id.ID != nil && got.ID != nil && *got.ID == *id.ID ||
			id.ID == nil && got.GroupID != nil && *got.GroupID == *id.GroupID && *got.SampleIndex == *id.SampleIndex {
			if err := doccheck.Match(block, r); err != nil {
				t.Errorf("%s's row is not the program's:\n%v\nthe program's row: %s", page, err, b)
			}
			return
		}
	}
	t.Errorf("%s shows a row that the run does not write", page)
}
