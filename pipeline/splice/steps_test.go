package splice

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSplitSteps(t *testing.T) {
	for _, tc := range []struct {
		text, mode string
		want       []string
	}{
		{"a\nb\nc", StepsLines, []string{"a", "b", "c"}},
		{"  a \n\n\tb\r\n   \nc\n", StepsLines, []string{"a", "b", "c"}},
		{"a\nb\n\nc\n \nd", StepsParagraphs, []string{"a\nb", "c", "d"}},
		{"one paragraph\n  with two lines  ", StepsParagraphs, []string{"one paragraph\n  with two lines"}},
		{" \n\n ", StepsLines, nil},
		{"", StepsParagraphs, nil},
		{"Schritt 1: ä\nStep 2: 数", StepsLines, []string{"Schritt 1: ä", "Step 2: 数"}},
	} {
		spans := splitSteps(tc.text, tc.mode)
		var got []string
		prev := 0
		for _, sp := range spans {
			if sp.start < prev || sp.end <= sp.start {
				t.Fatalf("%q: spans %v out of order", tc.text, spans)
			}
			prev = sp.end
			got = append(got, tc.text[sp.start:sp.end])
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitSteps(%q, %s) = %q, want %q", tc.text, tc.mode, got, tc.want)
		}
	}
}

func TestOrdered(t *testing.T) {
	items := func(n int) func() (int, bool, error) {
		i := 0
		return func() (int, bool, error) {
			if i == n {
				return 0, false, nil
			}
			i++
			return i - 1, true, nil
		}
	}
	// Later items finish first; results still come out in input order, and
	// never more than n run at once.
	var running, peak atomic.Int32
	work := func(_ context.Context, i int) int {
		r := running.Add(1)
		for {
			p := peak.Load()
			if r <= p || peak.CompareAndSwap(p, r) {
				break
			}
		}
		time.Sleep(time.Duration(50-i) * 100 * time.Microsecond)
		running.Add(-1)
		return i * i
	}
	var got []int
	if err := ordered(context.Background(), 4, items(50), work, func(r int) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r != i*i {
			t.Fatalf("result %d is %d", i, r)
		}
	}
	if len(got) != 50 || peak.Load() > 4 {
		t.Fatalf("%d results, %d at once", len(got), peak.Load())
	}

	stop := errors.New("stop")
	n := 0
	err := ordered(context.Background(), 4, items(50), work, func(int) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("emit error: %v after %d", err, n)
	}

	bad := errors.New("line 7 is not JSON")
	i := 0
	next := func() (int, bool, error) {
		if i == 7 {
			return 0, false, bad
		}
		i++
		return i, true, nil
	}
	n = 0
	if err := ordered(context.Background(), 3, next, work, func(int) error { n++; return nil }); !errors.Is(err, bad) || n != 7 {
		t.Fatalf("read error: %v after %d results", err, n)
	}

	// Cancelling ends the run; results made while it ended are not emitted.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	n = 0
	err = ordered(ctx, 2, items(1000), func(ctx context.Context, i int) int {
		<-ctx.Done()
		return i
	}, func(int) error { n++; return nil })
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("cancelled: %v after %d results", err, n)
	}
}
