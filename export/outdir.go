package export

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// An output directory is shared with its user: a README.md of their own, a
// notes file, a data/ folder of another dataset. redraft writes and deletes
// only what it owns there:
//
//   - data/<dataset>/<split>-NNNNN.parquet for its datasets (rl, sft, pairs,
//     verl), and the hidden .<name>.tmp a shard is written under;
//   - manifest.json, failures.jsonl, _SUCCESS, the journal (.redraft/) and
//     the hidden temporary files they are written through;
//   - README.md only when it is redraft's dataset card, recognised by
//     CardMarker.
//
// Anything else under data/, and a README.md that is not a card, stops a run
// before it writes anything, naming the file; --overwrite removes only the
// files above.

// CardMarker is the line every dataset card carries, right after its YAML
// header, so that redraft can tell its own README.md from a user's. It is an
// HTML comment: Hugging Face and other Markdown renderers do not show it.
const CardMarker = "<!-- redraft:dataset-card: written by redraft and rewritten by every run on this directory; edit the run's configuration, not this file -->"

// legacyCard is the credit line of cards written before CardMarker existed,
// found after their fixed header, so that those runs still resume.
var legacyCard = []byte("\nMade by [redraft](https://github.com/redraft/redraft) (")

// IsCard reports whether b is a dataset card written by redraft.
func IsCard(b []byte) bool {
	if bytes.Contains(b, []byte(CardMarker)) {
		return true
	}
	return bytes.HasPrefix(b, []byte("---\nconfigs:\n")) && bytes.Contains(b, []byte("\ntags:\n- redraft\n")) && bytes.Contains(b, legacyCard)
}

// CheckCard returns an error when dir holds a README.md that redraft did not
// write: redraft would replace it with its dataset card.
func CheckCard(dir string) error {
	foreign, err := foreignCard(dir)
	if err != nil || !foreign {
		return err
	}
	return foreignError(dir, []string{CardName})
}

// foreignCard reports whether dir holds a README.md that is not a card.
func foreignCard(dir string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, CardName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("output directory: %w", err)
	}
	return !IsCard(b), nil
}

// ownedDatasets are the datasets redraft writes under data/.
var ownedDatasets = map[string]bool{"rl": true, "sft": true, "pairs": true, VerlDataset: true}

// shardName is a shard file's name as ShardWriter makes it, or its
// temporary name.
var shardName = regexp.MustCompile(`^(?:[A-Za-z0-9_]+-[0-9]{5,}\.parquet|\.[A-Za-z0-9_]+-[0-9]{5,}\.parquet\.tmp)$`)

// IsShardPath reports whether rel, a slash-separated path relative to an
// output directory, is named as redraft names its shards (or their
// temporary files): data/<dataset>/<split>-NNNNN.parquet for one of its
// datasets.
func IsShardPath(rel string) bool {
	parts := strings.Split(rel, "/")
	return len(parts) == 3 && parts[0] == "data" && ownedDatasets[parts[1]] && shardName.MatchString(parts[2])
}

// ForeignFiles lists what in dir redraft does not own and would write over
// or delete: the files under data/ not named as its shards, and README.md
// when it is not a dataset card. Paths are slash-separated, relative to dir
// and sorted; a missing dir has none.
func ForeignFiles(dir string) ([]string, error) {
	var out []string
	card, err := foreignCard(dir)
	if err != nil {
		return nil, err
	}
	if card {
		out = append(out, CardName)
	}
	root := filepath.Join(dir, "data")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !IsShardPath(rel) || !d.Type().IsRegular() {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("output directory %s: %w", dir, err)
	}
	sort.Strings(out)
	return out, nil
}

// CheckOwnership returns an error naming the files of dir that redraft does
// not own and would write over or delete (see ForeignFiles).
func CheckOwnership(dir string) error {
	foreign, err := ForeignFiles(dir)
	if err != nil || len(foreign) == 0 {
		return err
	}
	return foreignError(dir, foreign)
}

func foreignError(dir string, foreign []string) error {
	if len(foreign) == 1 && foreign[0] == CardName {
		return fmt.Errorf("output directory %s: %s was not written by redraft (it lacks the dataset card's marker), and redraft writes its dataset card there; it never replaces a file it did not write (--overwrite included): move it away or choose another output directory",
			dir, filepath.Join(dir, CardName))
	}
	const show = 10
	list, more := foreign, ""
	if len(list) > show {
		list, more = list[:show], fmt.Sprintf(" and %d more", len(foreign)-show)
	}
	return fmt.Errorf("output directory %s holds files redraft did not write where it writes: %s%s. redraft writes only its own shards under data/ and its dataset card as README.md, and deletes nothing else (--overwrite included): move them away or choose another output directory",
		dir, strings.Join(list, ", "), more)
}

// HasShards reports whether dir holds any file named as redraft's shards
// (see IsShardPath).
func HasShards(dir string) (bool, error) {
	found := false
	err := filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if rel, rerr := filepath.Rel(dir, p); rerr == nil && !d.IsDir() && IsShardPath(filepath.ToSlash(rel)) {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found, err
}

// RemoveOutput removes what redraft wrote in dir, for --overwrite: its
// shards and their temporary files, the manifest, the failures record,
// _SUCCESS, the dataset card, the temporary files those are written through,
// and extra (paths relative to dir that the caller owns, such as the
// journal's directory). It refuses, removing nothing, when dir holds a file
// redraft does not own where it writes (see ForeignFiles).
func RemoveOutput(dir string, extra ...string) error {
	foreign, err := ForeignFiles(dir)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		return foreignError(dir, foreign)
	}
	var shards []string
	root := filepath.Join(dir, "data")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			shards = append(shards, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("overwrite: %w", err)
	}
	for _, p := range shards {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("overwrite: %w", err)
		}
	}
	// The dataset directories redraft made, and data/ itself, go when
	// nothing else is left in them (os.Remove keeps a directory that is not
	// empty).
	for ds := range ownedDatasets {
		os.Remove(filepath.Join(root, ds))
	}
	os.Remove(root)
	var names []string
	for _, n := range []string{ManifestName, FailuresName, SuccessName, CardName} {
		names = append(names, n, "."+n+".tmp")
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("overwrite: %w", err)
		}
	}
	for _, n := range extra {
		if n == "" || path.IsAbs(n) || strings.HasPrefix(path.Clean(n), "..") {
			return fmt.Errorf("overwrite: %q is not inside the output directory", n)
		}
		if err := os.RemoveAll(filepath.Join(dir, filepath.FromSlash(n))); err != nil {
			return fmt.Errorf("overwrite: %w", err)
		}
	}
	return nil
}
