package heatmap

import (
	"fmt"
	"image/color"
)

// Colormap maps a value in [0, 1] to a color. The shipped ones are
// perceptually uniform: equal steps in value look like equal steps in
// color, so a reader can compare two regions' heat by eye, and they stay
// ordered when printed in gray.
type Colormap struct {
	Name  string
	table *[256][3]uint8
}

// Colormaps are the names accepted by heatmap.render.colormap.
var Colormaps = []string{"inferno", "viridis", "magma"}

// ColormapByName returns a shipped colormap.
func ColormapByName(name string) (Colormap, error) {
	switch name {
	case "inferno":
		return Colormap{name, &infernoTable}, nil
	case "viridis":
		return Colormap{name, &viridisTable}, nil
	case "magma":
		return Colormap{name, &magmaTable}, nil
	}
	return Colormap{}, fmt.Errorf("unknown colormap %q (known: %v)", name, Colormaps)
}

// At returns the color of v, clamped to [0, 1].
func (c Colormap) At(v float32) color.RGBA {
	i := int(v*255 + 0.5)
	i = min(max(i, 0), 255)
	e := c.table[i]
	return color.RGBA{e[0], e[1], e[2], 255}
}
