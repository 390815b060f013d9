//go:build !race

package worklist

const raceEnabled = false
