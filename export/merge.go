package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// MergeOptions configures Merge.
type MergeOptions struct {
	// Verify recomputes every shard's sha256 (reads every byte); otherwise
	// sizes are checked.
	Verify bool
}

// Merge combines the shard runs under dir/shards/ (written by "redraft run
// --shard i/N --out dir") into one manifest and dataset card at dir. Rows
// are not copied: the merged manifest lists each part's shard files where
// they are. It refuses unless every one of the N parts is present, complete
// (manifest status complete and its _SUCCESS marker), of the same
// configuration, and every listed file is intact.
func Merge(dir string, opts MergeOptions) (*Manifest, error) {
	parts, err := filepath.Glob(filepath.Join(dir, "shards", "shard-*-of-*"))
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("merge: no shard runs under %s", filepath.Join(dir, "shards"))
	}
	// The merged manifest and card are written at dir: a README.md there
	// that is not redraft's card is refused before anything is written.
	if err := CheckCard(dir); err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if prev, err := ReadManifest(dir); err == nil && len(prev.Parts) == 0 {
		return nil, fmt.Errorf("merge: %s holds a run that is not a merge (status %s); merge into the directory given to --out of the sharded runs", dir, prev.Status)
	}
	sort.Strings(parts)
	var problems []string
	var manifests []*Manifest
	var rels []string
	for _, p := range parts {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		m, err := ReadManifest(p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: no manifest (%v): the shard has not run", rel, err))
			continue
		}
		switch {
		case m.Shard == nil:
			problems = append(problems, fmt.Sprintf("%s: its manifest names no shard", rel))
			continue
		case ShardDir(*m.Shard) != rel:
			problems = append(problems, fmt.Sprintf("%s: its manifest is shard %d/%d", rel, m.Shard.Index, m.Shard.Count))
			continue
		case m.Status != StatusComplete:
			problems = append(problems, fmt.Sprintf("%s: status %s (%s): run it again to resume it", rel, m.Status, m.Error))
			continue
		}
		if _, err := os.Stat(filepath.Join(p, SuccessName)); err != nil {
			problems = append(problems, fmt.Sprintf("%s: no %s marker", rel, SuccessName))
			continue
		}
		manifests = append(manifests, m)
		rels = append(rels, rel)
	}
	if len(manifests) > 0 {
		n := manifests[0].Shard.Count
		seen := map[int]bool{}
		for i, m := range manifests {
			if m.Shard.Count != n {
				problems = append(problems, fmt.Sprintf("%s: a run of %d shards, %s's is of %d", rels[i], m.Shard.Count, rels[0], n))
			}
			if m.ConfigHash != manifests[0].ConfigHash {
				problems = append(problems, fmt.Sprintf("%s: configuration %.12s differs from %s's %.12s", rels[i], m.ConfigHash, rels[0], manifests[0].ConfigHash))
			}
			seen[m.Shard.Index] = true
		}
		var missing []string
		for i := range n {
			if !seen[i] {
				missing = append(missing, fmt.Sprint(i))
			}
		}
		if len(missing) > 0 && len(missing) <= 20 {
			problems = append(problems, fmt.Sprintf("shards missing or incomplete: %s of %d", strings.Join(missing, ", "), n))
		} else if len(missing) > 20 {
			problems = append(problems, fmt.Sprintf("%d of %d shards missing or incomplete", len(missing), n))
		}
	}
	if len(problems) == 0 {
		for i, m := range manifests {
			problems = append(problems, checkPartFiles(filepath.Join(dir, rels[i]), rels[i], m, opts.Verify)...)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("merge %s: %d problem(s):\n  %s", dir, len(problems), strings.Join(problems, "\n  "))
	}

	first := manifests[0]
	out := &Manifest{
		Status: StatusComplete, Started: first.Started, Finished: first.Finished,
		CodeVersion: first.CodeVersion, GoVersion: first.GoVersion, Config: first.Config, ConfigHash: first.ConfigHash,
		Source: first.Source, Model: first.Model, Endpoint: first.Endpoint, Datasets: map[string]DatasetInfo{},
	}
	skipped := map[Skipped]bool{}
	var summaries []RewardSummary
	for i, m := range manifests {
		if m.Started.Before(out.Started) {
			out.Started = m.Started
		}
		if m.Finished.After(out.Finished) {
			out.Finished = m.Finished
		}
		part := PartInfo{Dir: rels[i], Shard: *m.Shard, Started: m.Started, Finished: m.Finished, Rows: m.Datasets["rl"].Rows}
		if f := m.Failures; f != nil {
			pf := *f
			pf.Path = path.Join(rels[i], f.Path)
			part.Failures = &pf
		}
		out.Parts = append(out.Parts, part)
		for name, ds := range m.Datasets {
			acc, ok := out.Datasets[name]
			if !ok {
				acc = DatasetInfo{Schema: ds.Schema, Shards: []ShardInfo{}}
			} else if acc.Schema != ds.Schema {
				return nil, fmt.Errorf("merge: dataset %s is %s in one shard run and %s in %s", name, acc.Schema, ds.Schema, rels[i])
			}
			acc.Rows += ds.Rows
			acc.Groups += ds.Groups
			for _, s := range ds.Shards {
				s.Path = path.Join(rels[i], s.Path)
				acc.Shards = append(acc.Shards, s)
			}
			out.Datasets[name] = acc
		}
		// Every shard reads the whole input, so each lists the same
		// skipped records.
		for _, s := range m.Skipped {
			if !skipped[s] {
				skipped[s] = true
				out.Skipped = append(out.Skipped, s)
			}
		}
		out.SkippedTotal = max(out.SkippedTotal, m.SkippedTotal)
		summaries = append(summaries, m.Rewards)
	}
	out.Rewards = MergeSummaries(summaries)
	if err := WriteManifest(dir, out); err != nil {
		return nil, err
	}
	if err := WriteCard(dir, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkPartFiles checks that every file a shard run's manifest lists is
// there, with its size, and its sha256 when verify is set.
func checkPartFiles(partDir, rel string, m *Manifest, verify bool) []string {
	var problems []string
	check := func(p string, size int64, sum string) {
		f, err := os.Open(filepath.Join(partDir, filepath.FromSlash(p)))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rel, err))
			return
		}
		defer f.Close()
		if size >= 0 {
			if st, err := f.Stat(); err != nil || st.Size() != size {
				problems = append(problems, fmt.Sprintf("%s/%s: size differs from its manifest's %d bytes", rel, p, size))
				return
			}
		}
		if verify {
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s: %v", rel, p, err))
			} else if hex.EncodeToString(h.Sum(nil)) != sum {
				problems = append(problems, fmt.Sprintf("%s/%s: sha256 differs from its manifest's", rel, p))
			}
		}
	}
	for _, ds := range m.Datasets {
		for _, s := range ds.Shards {
			check(s.Path, s.Bytes, s.SHA256)
		}
	}
	if f := m.Failures; f != nil {
		check(f.Path, -1, f.SHA256)
	}
	return problems
}

// MergeSummaries combines the reward summaries of disjoint parts of a run:
// counts add up, the mean and standard deviation are pooled exactly (Chan et
// al.'s parallel variance), accuracy and the zero-variance fraction are
// re-weighted by their parts' counts.
func MergeSummaries(parts []RewardSummary) RewardSummary {
	out := RewardSummary{FinishReason: map[string]int64{}}
	var n, correct, zeroStd float64
	var mean, m2 float64
	for _, p := range parts {
		out.Rows += p.Rows
		out.Failed += p.Failed
		out.NullRewards += p.NullRewards
		out.Graded += p.Graded
		out.Groups += p.Groups
		out.DroppedZeroStd += p.DroppedZeroStd
		for k, v := range p.FinishReason {
			out.FinishReason[k] += v
		}
		if p.Accuracy != nil {
			correct += math.Round(*p.Accuracy * float64(p.Graded))
		}
		if p.FracZeroStd != nil {
			zeroStd += math.Round(*p.FracZeroStd * float64(p.Groups))
		}
		k := float64(p.Rows - p.NullRewards)
		if k == 0 || p.Mean == nil {
			continue
		}
		var pm2 float64
		if p.Std != nil {
			pm2 = *p.Std * *p.Std * (k - 1)
		}
		d := *p.Mean - mean
		tot := n + k
		mean += d * k / tot
		m2 += pm2 + d*d*n*k/tot
		n = tot
	}
	if n > 0 {
		m := mean
		out.Mean = &m
	}
	if n > 1 {
		sd := math.Sqrt(m2 / (n - 1))
		out.Std = &sd
	}
	if out.Graded > 0 {
		a := correct / float64(out.Graded)
		out.Accuracy = &a
	}
	if out.Groups > 0 {
		f := zeroStd / float64(out.Groups)
		out.FracZeroStd = &f
	}
	return out
}
