package pipeline

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redraft/redraft/export"
	"github.com/redraft/redraft/rollout"
)

func TestWALEncoderMatchesMarshal(t *testing.T) {
	reason := "think \xff\xfe é ü 😀 <a&b> \u2028" + strings.Repeat("é😀\"\\\n\t\x01", 30000)
	big := strings.Repeat("x😀\"\\\n", 2_000_000) + "\xffend"
	for _, resp := range []string{"small", big} {
		dir := t.TempDir()
		j, err := createJournal(dir, json.RawMessage(`{}`), "h", time.Now(), rollout.Shard{})
		if err != nil {
			t.Fatal(err)
		}
		f := &Flush{Groups: []Out{
			{Task: rollout.Task{ID: "a"}, Turn: 2, More: true, Rows: []export.RLRow{{TaskID: "a", Response: resp, Reasoning: &reason}, {TaskID: "b", Response: "r2"}}},
			{Task: rollout.Task{ID: "b"}, Dropped: true},
			{Task: rollout.Task{ID: "c"}, Rows: []export.RLRow{}},
		}, State: State{Resumable: true}}
		if err := j.append(f); err != nil {
			t.Fatal(err)
		}
		if err := j.append(&Flush{}); err != nil {
			t.Fatal(err)
		}
		j.close()
		want, _ := json.Marshal(newWALRecord(f))
		var wantRec walRecord
		json.Unmarshal(want, &wantRec)
		var got []*walRecord
		scanWAL(filepath.Join(dir, ".redraft", "wal-000000.log"), func(r *walRecord, _ int64) error { got = append(got, r); return nil })
		if len(got) != 2 || !reflect.DeepEqual(got[0], &wantRec) {
			t.Fatalf("mismatch %d", len(got))
		}
		var empty walRecord
		e2, _ := json.Marshal(newWALRecord(&Flush{}))
		json.Unmarshal(e2, &empty)
		if !reflect.DeepEqual(got[1], &empty) {
			t.Fatalf("empty mismatch %+v %+v", got[1], empty)
		}
	}
}
