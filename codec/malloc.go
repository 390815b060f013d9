package codec

/*
#include <malloc.h>

static void tc_malloc_tune(int threshold) {
	// A fixed threshold also turns off glibc's dynamic adjustment, which
	// raises it to the size of the largest block freed so far (up to 32 MiB).
	mallopt(M_MMAP_THRESHOLD, threshold);
}
*/
import "C"

// mmapThreshold is the size from which C allocations get their own
// mapping.
const mmapThreshold = 256 << 10

// The codecs allocate tens of megabytes per full-size film in C (OpenJPEG
// decodes into 32-bit planes), on whichever thread cgo runs them. With
// glibc's default, the threshold above which malloc maps memory of its own
// (returned to the kernel on free) grows to the largest block ever freed,
// after which every film's buffers come from the per-thread heaps, which
// keep what they once held: the daemon's RSS then grows with the number of
// threads that ever decoded, not with the films in flight. Measured with 4
// workers on full-size films: peak RSS 465 MiB by default, 270 MiB with a
// fixed 256 KiB threshold, at the same throughput.
func init() { C.tc_malloc_tune(C.int(mmapThreshold)) }
