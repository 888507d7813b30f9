package audit

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/parquet/file"
)

// TokenReport counts where the rl rows' token tracks come from and how the
// engine's ids compare with the configured tokenizer's (rl/6's
// token_source and token_check; see docs/token-track.md).
type TokenReport struct {
	// Engine and Tokenizer count the rows by token_source.
	Engine    int64 `json:"engine"`
	Tokenizer int64 `json:"tokenizer"`
	// Match and Mismatch count the engine rows by token_check (rows whose
	// check is null are in neither); MismatchRate is Mismatch over the two.
	Match        int64    `json:"match"`
	Mismatch     int64    `json:"mismatch"`
	MismatchRate *float64 `json:"mismatch_rate"`
	// LogprobsUnaligned counts the rows whose logprobs_reason is set.
	LogprobsUnaligned int64 `json:"logprobs_unaligned"`
}

// AddTokens reads the token provenance of the rl rows of the run path names
// (as for Path) into a.Tokens, which stays nil when no row has an engine
// track.
func (a *Report) AddTokens(ctx context.Context, path string) error {
	rl, _, err := agentShards(path)
	if err != nil {
		return err
	}
	var t TokenReport
	cols := []string{"token_source", "token_check", "logprobs_reason"}
	for _, p := range rl {
		pf, err := file.OpenParquetFile(p, false)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		n := pf.NumRowGroups()
		rows := make([]int64, n)
		for rg := range n {
			rows[rg] = pf.MetaData().RowGroup(rg).NumRows()
		}
		pf.Close()
		for rg := range n {
			if err := scanAgentUnit(ctx, p, rg, rows[rg], cols, t.add); err != nil {
				return err
			}
		}
	}
	if t.Engine == 0 {
		a.Tokens = nil
		return nil
	}
	t.MismatchRate = ratio(t.Mismatch, t.Match+t.Mismatch)
	a.Tokens = &t
	return nil
}

func (t *TokenReport) add(rec arrow.Record) error {
	src, check, lp := recordStrings(rec, "token_source"), recordStrings(rec, "token_check"), recordStrings(rec, "logprobs_reason")
	for i := range int(rec.NumRows()) {
		if src != nil {
			switch s, _ := src(i); s {
			case "engine":
				t.Engine++
			case "tokenizer":
				t.Tokenizer++
			}
		}
		if check != nil {
			switch s, _ := check(i); s {
			case "match":
				t.Match++
			case "mismatch":
				t.Mismatch++
			}
		}
		if lp != nil {
			if _, ok := lp(i); ok {
				t.LogprobsUnaligned++
			}
		}
	}
	return nil
}

// writeTokens prints the token provenance (nothing without engine rows).
func (a *Report) writeTokens(w io.Writer) {
	t := a.Tokens
	if t == nil {
		return
	}
	fmt.Fprintf(w, "\ntoken track: %d rows with the engine's ids, %d with the tokenizer's; token_check %d match, %d mismatch (mismatch rate %s); %d rows with unaligned logprobs\n",
		t.Engine, t.Tokenizer, t.Match, t.Mismatch, fmtPct(t.MismatchRate), t.LogprobsUnaligned)
}
