//go:build !race

package pipeline

// raceDetector is true in a test binary built with -race, which runs the
// long disk-full sweep on a few sizes only.
const raceDetector = false
