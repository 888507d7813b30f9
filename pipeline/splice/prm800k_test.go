package splice

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/pipeline"
)

const prmPath = "../../testdata/prm800k/phase1_reconstructed.jsonl.gz"

// On the bundled PRM800K phase-1 file: 1,048 trajectories, of which 797 have
// a step rated -1. At that step 585 have a +1 sibling and 212 a human step.
// One of the 585 (line 939) cannot be spliced: its step 1, before the error,
// is an unrated completion nobody chose, a gap in the reconstructed record,
// so the path leading to the error is unknown.
func TestPRM800KSplice(t *testing.T) {
	records := readRecords(t)
	for _, tc := range []struct {
		keep                  string
		rows, sibling, human  int
		noAnswer, wrongAnswer int
	}{
		// keep all: every trajectory that can be spliced.
		{KeepAll, 796, 584, 212, 0, 0},
		// keep correct (the default): 14 corrected solutions state no final
		// answer, and line 53's says 585000 where the reference is 58,500.
		{KeepCorrect, 781, 573, 208, 14, 1},
	} {
		t.Run(tc.keep, func(t *testing.T) {
			o := DefaultOptions()
			o.Keep = tc.keep
			var rows []export.SFTRow
			sources := map[string]int{}
			skips, err := prm800k(context.Background(), prmPath, o, func(tr *pipeline.Trajectory) error {
				row := tr.SFTRow()
				rows = append(rows, row)
				var meta struct {
					CorrectionSource string `json:"correction_source"`
					Grade            *struct {
						Correct *bool
						Reason  string
					}
				}
				json.Unmarshal([]byte(*row.Metadata), &meta)
				sources[meta.CorrectionSource]++
				if meta.Grade == nil || (tc.keep == KeepCorrect && meta.Grade.Correct != nil && !*meta.Grade.Correct) {
					t.Fatalf("%s: grade %+v", row.ID, meta.Grade)
				}
				checkSplice(t, tr, row, records)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.rows || sources["sibling_rated_+1"] != tc.sibling || sources["human_step"] != tc.human {
				t.Errorf("%d rows, sources %v", len(rows), sources)
			}
			reasons := map[string]int{}
			noAnswer, wrong := 0, 0
			for _, s := range skips {
				reasons[s.Reason]++
				switch {
				case strings.Contains(s.Reason, "never states a final answer"):
					noAnswer++
				case strings.Contains(s.Reason, "graded incorrect (answer"):
					wrong++
					if s.Line != 53 || !strings.Contains(s.Reason, "answer 585000, reference 58,500") {
						t.Errorf("line %d: %s", s.Line, s.Reason)
					}
				}
			}
			if len(skips) != 252+tc.noAnswer+tc.wrongAnswer || reasons["no step rated -1"] != 251 || reasons["step 1 before the error has no chosen completion"] != 1 ||
				noAnswer != tc.noAnswer || wrong != tc.wrongAnswer || !hasLine(skips, 939) {
				t.Errorf("skips: %v", reasons)
			}
		})
	}
}

func hasLine(skips []skip, line int) bool {
	for _, s := range skips {
		if s.Line == line {
			return true
		}
	}
	return false
}

// checkSplice: the masked span is exactly the erroneous step's text, the
// reflection and correction are trained and exactly their texts, and the
// segments concatenate to the message text.
func checkSplice(t *testing.T, tr *pipeline.Trajectory, row export.SFTRow, records map[int]*prmRecord) {
	t.Helper()
	if len(row.Messages) != 2 || row.Messages[0].Role != "user" || row.Messages[0].LossMask != 0 || row.Messages[1].LossMask != 1 {
		t.Fatalf("%s: messages %+v", row.ID, row.Messages)
	}
	asst := tr.Messages[1]
	content := []rune(row.Messages[1].Content)
	var masked, reflections, corrections []string
	for i, sp := range row.Messages[1].Segments {
		seg := asst.Segments[i]
		if got := string(content[sp.Start:sp.End]); got != seg.Text {
			t.Fatalf("%s: span %d [%d:%d] is %q, segment text %q", row.ID, i, sp.Start, sp.End, got, seg.Text)
		}
		if sp.Trainable != seg.Trainable || sp.Role != seg.Role {
			t.Fatalf("%s: span %d flags differ", row.ID, i)
		}
		if !sp.Trainable {
			masked = append(masked, seg.Text)
		}
		switch sp.Role {
		case pipeline.SegReflection:
			reflections = append(reflections, seg.Text)
		case pipeline.SegCorrection:
			corrections = append(corrections, seg.Text)
		}
		if (sp.Role == pipeline.SegReflection || sp.Role == pipeline.SegCorrection) && !sp.Trainable {
			t.Fatalf("%s: %s not trained", row.ID, sp.Role)
		}
	}
	last := row.Messages[1].Segments[len(row.Messages[1].Segments)-1]
	if int(last.End) != utf8.RuneCountInString(row.Messages[1].Content) || asst.Content() != row.Messages[1].Content {
		t.Fatalf("%s: segments do not cover the content", row.ID)
	}
	var meta struct {
		Line int `json:"source_line"`
		Bad  int `json:"erroneous_step_index"`
		At   int `json:"erroneous_completion_index"`
	}
	json.Unmarshal([]byte(*row.Metadata), &meta)
	if len(masked) != 1 || len(reflections) != 1 || len(corrections) != 1 {
		t.Fatalf("%s: %d masked, %d reflections, %d corrections", row.ID, len(masked), len(reflections), len(corrections))
	}
	// The masked text is the source's -1 completion, the correction the
	// step the labeller continued with.
	rec := records[meta.Line]
	step := rec.Label.Steps[meta.Bad]
	if c := step.Completions[meta.At]; c.Text != masked[0] || c.Rating == nil || *c.Rating != -1 {
		t.Errorf("%s: masked %q is not the -1 completion %q", row.ID, masked[0], c.Text)
	}
	if want, _ := chosenText(rec, meta.Bad); want != corrections[0] {
		t.Errorf("%s: correction %q, labelled path %q", row.ID, corrections[0], want)
	}
	for i := 0; i < meta.Bad; i++ {
		for _, c := range rec.Label.Steps[i].Completions {
			if c.Rating != nil && *c.Rating == -1 {
				t.Errorf("%s: step %d before the spliced one is rated -1", row.ID, i)
			}
		}
	}
	if !contains(DefaultReflections, reflections[0]) {
		t.Errorf("%s: reflection %q not from the pool", row.ID, reflections[0])
	}
	if strings.TrimSpace(masked[0]) == "" || strings.TrimSpace(corrections[0]) == "" {
		t.Errorf("%s: empty erroneous step or correction", row.ID)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func readRecords(t *testing.T) map[int]*prmRecord {
	t.Helper()
	out := map[int]*prmRecord{}
	f, err := os.Open(prmPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(gz)
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		var r prmRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[line] = &r
	}
	return out
}
