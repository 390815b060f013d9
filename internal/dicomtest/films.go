package dicomtest

// Film is a small synthetic chest-like film (a smooth gradient with a
// bright disc) that decodes and scores: distinct uid values make distinct
// instances, so many can be scored and deduplicated independently.
// priority is the Requested Procedure Priority ("" for none).
func Film(uid string, rows, cols int, priority string) []byte {
	px := make([]int, rows*cols)
	for y := range rows {
		for x := range cols {
			v := 200 + 3000*y/rows + 1000*x/cols
			dx, dy := x-cols/2, y-rows/3
			if dx*dx+dy*dy < rows*cols/16 {
				v += 1500
			}
			px[y*cols+x] = v
		}
	}
	return Image{
		Rows: rows, Columns: cols, BitsAllocated: 16, BitsStored: 12,
		Pixels: px, BodyPart: "CHEST", View: "PA", Priority: priority, SOPInstanceUID: uid,
	}.Bytes()
}
