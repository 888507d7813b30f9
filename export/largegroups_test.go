package export

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestTextSizer(t *testing.T) {
	reason, meta := "why", "{}"
	row := RLRow{
		TaskID: "t1", GroupID: "g", DataSource: "ds", Model: "m",
		Prompt:    []Message{{Role: "user", Content: "question"}},
		Response:  "answer",
		Reasoning: &reason,
		Logprobs:  []TokenLogprob{{Token: "ab", Logprob: -1}},
		Sampling:  &Sampling{Stop: []string{"</s>"}},
		// Numbers, bools and nil pointers hold no text.
		SampleIndex: 3, Reward: f64(1), ResponseIDs: []int32{1, 2, 3},
		TaskMetadata: &meta,
	}
	want := len("t1g") + len("ds") + len("m") + len("user") + len("question") + len("answer") + len("why") + len("ab") + len("</s>") + len("{}")
	size := textSizer(reflect.TypeFor[RLRow]())
	if got := size(reflect.ValueOf(row)); got != int64(want) {
		t.Errorf("RLRow text: %d bytes, want %d", got, want)
	}

	type nested struct {
		B   []byte
		M   map[string]*string
		A   [2]string
		N   []int64
		Any any
	}
	s := "12345"
	v := nested{B: []byte("abc"), M: map[string]*string{"k": &s, "nil": nil}, A: [2]string{"x", "yz"}, N: []int64{1}, Any: "not counted"}
	if got := textSizer(reflect.TypeFor[nested]())(reflect.ValueOf(v)); got != 3+1+5+3+1+2 {
		t.Errorf("nested text: %d bytes, want 15", got)
	}
	if textSizer(reflect.TypeFor[struct{ A, B int }]()) != nil {
		t.Error("a type without text has a sizer")
	}
}

// heapLive is the heap in use after a collection.
func heapLive() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestLargeGroupReleasesWriterBuffers writes a group holding one long
// response and checks what the writer leaves live: before the release,
// parquet-go's pools kept three more copies of the value (the column
// buffer's values, the encoded page, its compression scratch) besides the
// column buffer's scratch, alive for two collections after the write; and a
// reused Parquet writer kept that scratch for the next shard (every shard now
// gets a new one).
func TestLargeGroupReleasesWriterBuffers(t *testing.T) {
	const size = 24 << 20
	response := strings.Repeat("long derivation, step by step. ", size/31)
	dir := t.TempDir()
	w, err := NewShardWriter[RLRow](ShardOptions{Dir: dir, Dataset: "rl", Schema: RLSchema})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A small group first, so that the writer and its column buffers exist
	// before the baseline, in a row group of its own: the long response is
	// then alone in its page, as in a run whose answers are all long.
	if err := w.WriteGroup(ctx, []RLRow{{TaskID: "a", GroupID: "a#t0", Response: "short"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.cur.w.Flush(); err != nil {
		t.Fatal(err)
	}
	base := heapLive()
	if err := w.WriteGroup(ctx, []RLRow{{TaskID: "b", GroupID: "b#t0", Response: response}}); err != nil {
		t.Fatal(err)
	}
	// One collection, as a run's next would be: what the pools hold is
	// still live after it.
	held := heapLive() - base
	t.Logf("live after writing a group of %d MiB: %d MiB more", size>>20, held>>20)
	if held > 2*size {
		t.Errorf("after writing a group of %d MiB the writer holds %d MiB (want under %d MiB: the column buffer's scratch)", size>>20, held>>20, 2*size>>20)
	}
	shards, err := w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	left := heapLive() - base
	t.Logf("live after its shard finished: %d MiB more", left>>20)
	if left > size/2 {
		t.Errorf("after the shard holding a group of %d MiB finished, the writer still holds %d MiB", size>>20, left>>20)
	}
	rows, err := ReadRL(ctx, filepath.Join(dir, shards[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1].Response != response {
		t.Fatalf("read %d rows back, the long response intact: %v", len(rows), len(rows) == 2 && rows[1].Response == response)
	}
	runtime.KeepAlive(response)
	runtime.KeepAlive(w)
}

// TestLargeGroupShardBytes: the shard written after one that held a large
// group is byte for byte what a new shard writer writes as its first shard
// (every shard has a Parquet writer of its own; see
// TestEveryShardsFooterNamesItsColumns for why).
func TestLargeGroupShardBytes(t *testing.T) {
	ctx := context.Background()
	rows := func(id string) []RLRow {
		return []RLRow{{TaskID: id, GroupID: id + "#t0", Prompt: []Message{{Role: "user", Content: "q " + id}}, Response: "answer " + id, Reward: f64(1)},
			{TaskID: id, GroupID: id + "#t0", SampleIndex: 1, Prompt: []Message{{Role: "user", Content: "q " + id}}, Response: "other " + id, Reward: f64(0)}}
	}
	large := rows("big")
	large[0].Response = strings.Repeat("0123456789abcdef", largeGroupBytes/16+1)
	last := func(groups ...[]RLRow) []byte {
		dir := t.TempDir()
		w, err := NewShardWriter[RLRow](ShardOptions{Dir: dir, Dataset: "rl", Schema: RLSchema, ManualRotation: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range groups {
			if err := w.WriteGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		shards := w.Shards()
		b, err := os.ReadFile(filepath.Join(dir, shards[len(shards)-1].Path))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	afterLarge, first := last(large, rows("next")), last(rows("next"))
	if !bytes.Equal(afterLarge, first) {
		t.Errorf("the shard after a large group (%d bytes) differs from a new writer's first shard (%d bytes)", len(afterLarge), len(first))
	}
}
