#!/bin/sh
# Print the Debian packages (one per line) that provide the shared libraries
# the given ELF files link against: the .deb's Depends. A codec library
# newly linked into the binary is picked up without editing a list.
set -eu
libs=$(for f in "$@"; do ldd "$f" | awk '/=> \//{print $3}'; done | sort -u)
for lib in $libs; do
	real=$(readlink -f "$lib")
	found=
	# usrmerge: dpkg may know the file under /lib or /usr/lib.
	for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
		if pkg=$(dpkg -S "$p" 2>/dev/null); then
			echo "$pkg" | head -n1 | sed 's/[:,].*//'
			found=1
			break
		fi
	done
	if [ -z "$found" ]; then
		echo "deb-depends: no Debian package provides $lib" >&2
		exit 1
	fi
done | sort -u
