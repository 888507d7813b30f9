// Package rewards grades responses, turns verdicts into reward components,
// and computes group advantages.
//
// Every component is stored separately with the weight used; a component that
// could not be computed is nil with a reason, never a silent 0. The total is
// the weighted sum of the components and is nil, with the reason, when any
// weighted component is nil.
package rewards
