//go:build race

package worklist

// raceEnabled: timings under the race detector are several times slower
// than in production, so the browser test logs them without judging.
const raceEnabled = true
