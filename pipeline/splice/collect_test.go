package splice

import (
	"context"

	"github.com/redraft/redraft/pipeline"
)

// skip is a record without a trajectory, as the tests check them.
type skip struct {
	Line   int
	Reason string
}

// collect turns a trajectory callback (nil: none) into an emit of Records,
// collecting the records without a trajectory.
func collect(row func(*pipeline.Trajectory) error) (func(Record) error, *[]skip) {
	var skips []skip
	return func(r Record) error {
		if r.Trajectory == nil {
			skips = append(skips, skip{r.Line, r.Reason})
			return nil
		}
		if row == nil {
			return nil
		}
		return row(r.Trajectory)
	}, &skips
}

// prm800k and mrgsm8k splice a whole file, returning the skips.
func prm800k(ctx context.Context, path string, opts Options, row func(*pipeline.Trajectory) error) ([]skip, error) {
	emit, skips := collect(row)
	err := PRM800K(ctx, path, Cursor{}, opts, emit)
	return *skips, err
}

func mrgsm8k(ctx context.Context, path string, opts MRGSM8KOptions, row func(*pipeline.Trajectory) error) ([]skip, error) {
	emit, skips := collect(row)
	err := MRGSM8K(ctx, path, Cursor{}, opts, emit)
	return *skips, err
}
