package codec

import "testing"

// The level a reduced decode stops at: the deepest the codestream allows
// whose shorter side (OpenJPEG's ceil(x1/2^r) - ceil(x0/2^r)) is still at
// least the floor.
func TestReduceLevel(t *testing.T) {
	rg1 := J2KInfo{Xsiz: 1841, Ysiz: 1955, MinLevels: 5}
	off := J2KInfo{Xsiz: 1001, Ysiz: 901, XOsiz: 1, YOsiz: 1, MinLevels: 5} // 1000 x 900 at an odd origin
	for _, c := range []struct {
		info       J2KInfo
		floor, lvl int
		w, h       int
	}{
		{rg1, 0, 0, 1841, 1955},
		{rg1, 448, 2, 461, 489},
		{rg1, 461, 2, 461, 489},
		{rg1, 462, 1, 921, 978},
		{rg1, 2000, 0, 1841, 1955},
		{rg1, 1, 5, 58, 62},
		{J2KInfo{Xsiz: 4000, Ysiz: 4000, MinLevels: 1}, 448, 1, 2000, 2000},
		{off, 225, 2, 250, 225},
		{off, 226, 1, 500, 450},
	} {
		l := ReduceLevel(c.info, c.floor)
		w, h := reducedSize(c.info, l)
		if l != c.lvl || w != c.w || h != c.h {
			t.Errorf("%+v floor %d: level %d (%dx%d), want %d (%dx%d)", c.info, c.floor, l, w, h, c.lvl, c.w, c.h)
		}
	}
}
