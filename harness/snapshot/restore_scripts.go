package snapshot

import (
	"fmt"
	"strings"
)

// restoreManifest describes a copy of a data directory.
type restoreManifest struct {
	entries, bytes int64
	control        string // sha256 of global/pg_control
}

// restoreManifestScript (a shell function) prints the manifest of a
// directory ($1): "manifest ENTRIES BYTES SHA256-OF-PG_CONTROL".
const restoreManifestScript = `manifest() {
	printf 'manifest %s %s %s\n' "$(find "$1" | wc -l)" \
		"$(find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')" \
		"$(sha256sum < "$1/global/pg_control" | cut -d' ' -f1)"
}
`

// restoreCopyScript copies a data directory ($1) to $2, which it creates;
// $3 is the server's WAL segment size in bytes. It refuses what a copy of
// the directory would not bring back whole: pg_wal as a link (WAL kept
// elsewhere, POSTGRES_INITDB_WALDIR) and tablespaces (links in
// pg_tblspc). After a clean shutdown (pg_control, PostgreSQL 11 or later,
// says "shut down") the server needs, of its WAL, only the segment holding
// the shutdown checkpoint's redo point (and the next, should the record
// cross into it): the other segments are old or recycled ahead of use,
// often hundreds of megabytes after a bulk load, and are left out. After
// anything else, with replication slots, or on doubt, everything is
// copied. The copy is then checked against the source (entries, bytes,
// pg_control) and its manifest printed.
const restoreCopyScript = `set -eu
export LC_ALL=C
` + restoreManifestScript + `src=$1 dst=$2 size=$3
[ -f "$src/PG_VERSION" ] && [ -f "$src/global/pg_control" ] || { echo "$src is not a PostgreSQL data directory (no PG_VERSION or global/pg_control)" >&2; exit 3; }
if [ -L "$src/pg_wal" ] || [ -L "$src/pg_xlog" ]; then echo "not supported: pg_wal is a link (WAL outside the data directory, initdb --waldir or POSTGRES_INITDB_WALDIR)" >&2; exit 3; fi
if [ -d "$src/pg_tblspc" ] && [ -n "$(ls -A "$src/pg_tblspc")" ]; then echo "not supported: tablespaces present (pg_tblspc is not empty)" >&2; exit 3; fi
mkdir "$dst"
num() { od -An -v -j "$1" -N "$2" -t "$3" "$src/global/pg_control" | tr -d ' \n'; }
version=$(num 8 4 u4) state=$(num 16 4 u4) redo=$(num 40 8 x8) tli=$(num 48 4 u4)
full=
case $size in ''|*[!0-9]*) full=1 ;; esac
if [ -z "$full" ]; then
	[ "$size" -ge 1048576 ] && [ "$size" -le 1073741824 ] && [ $((size & (size - 1))) -eq 0 ] || full=1
fi
[ "$version" -ge 1100 ] 2>/dev/null && [ "$state" = 1 ] && [ "$tli" -ge 1 ] 2>/dev/null && [ -n "$redo" ] || full=1
[ -d "$src/pg_replslot" ] && [ -n "$(ls -A "$src/pg_replslot")" ] && full=1
[ -d "$src/pg_wal" ] || full=1
skipped=0 skippedBytes=0
if [ -z "$full" ]; then
	per=$((4294967296 / size))
	segno=$((0x$redo / size))
	keep=$(printf '%08X%08X%08X' "$tli" $((segno / per)) $((segno % per)))
	segno=$((segno + 1))
	next=$(printf '%08X%08X%08X' "$tli" $((segno / per)) $((segno % per)))
	[ -f "$src/pg_wal/$keep" ] || full=1
fi
if [ -n "$full" ]; then
	cp -a "$src"/. "$dst"/
else
	for f in "$src"/* "$src"/.[!.]* "$src"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ "$f" = "$src/pg_wal" ] && continue
		cp -a "$f" "$dst"/
	done
	mkdir "$dst/pg_wal"
	for f in "$src"/pg_wal/* "$src"/pg_wal/.[!.]* "$src"/pg_wal/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		n=${f##*/}
		if [ ${#n} -eq 24 ] && [ "$n" != "$keep" ] && [ "$n" != "$next" ] && [ -z "$(printf '%s' "$n" | tr -d 0-9A-F)" ] && [ -f "$f" ] && [ ! -L "$f" ]; then
			skipped=$((skipped + 1)) skippedBytes=$((skippedBytes + $(stat -c %s "$f")))
			continue
		fi
		cp -a "$f" "$dst/pg_wal/"
	done
	chown --reference="$src/pg_wal" "$dst/pg_wal"
	chmod --reference="$src/pg_wal" "$dst/pg_wal"
	chown --reference="$src" "$dst"
	chmod --reference="$src" "$dst"
fi
set -- $(manifest "$src") ; want=$(($2 - skipped)) wantBytes=$(($3 - skippedBytes)) wantSha=$4
set -- $(manifest "$dst")
if [ "$2" != "$want" ] || [ "$3" != "$wantBytes" ] || [ "$4" != "$wantSha" ]; then
	echo "the copy does not match the data directory: $2 entries, $3 bytes, pg_control $4; want $want, $wantBytes, $wantSha" >&2
	exit 4
fi
echo "manifest $2 $3 $4"
`

// The exits of restoreBackScript that left the data directory untouched
// (any other non-zero exit failed while it swapped the copy in).
const (
	// restoreBackUntouched: the environment failed before the swap (no
	// space on the data volume, a leftover of a previous restore it could
	// not remove, the copy not copied); the copy may be good.
	restoreBackUntouched = 10
	// restoreBackDamaged: the copy is damaged (no PG_VERSION or
	// global/pg_control, in the copy or once staged) or does not match the
	// manifest recorded when it was made.
	restoreBackDamaged = 13
)

// restoreBackScript puts a copy ($2) back into a data directory ($1) on a
// volume mounted at $3: it copies it into a staging directory on that
// volume, checks the staged copy against the manifest recorded at Take
// ($4 entries, $5 bytes, $6 pg_control's sha256), and only then swaps it
// in by renames (the old files moved aside, the staged ones moved in) and
// removes the old files. It exits restoreBackDamaged when the copy is
// damaged or does not match the manifest, restoreBackUntouched when
// anything else failed before the swap (both leave the data directory
// untouched), anything else non-zero when the swap failed.
const restoreBackScript = `set -u
export LC_ALL=C
` + restoreManifestScript + `data=$1 spare=$2 vol=$3
stage=$vol/.rehearse-stage old=$vol/.rehearse-old
fail() { echo "$*" >&2; rm -rf -- "$stage"; exit 10; }
damaged() { echo "$*" >&2; rm -rf -- "$stage"; exit 13; }
rm -rf -- "$stage" "$old" || fail "remove a previous restore's leftovers ($stage, $old)"
[ -f "$spare/PG_VERSION" ] && [ -f "$spare/global/pg_control" ] || damaged "the snapshot's copy is damaged: no PG_VERSION or global/pg_control"
cp -a "$spare" "$stage" || fail "copy the snapshot into $stage failed"
[ -f "$stage/PG_VERSION" ] && [ -f "$stage/global/pg_control" ] || damaged "the staged copy is damaged: no PG_VERSION or global/pg_control"
got=$(manifest "$stage") || fail "read the staged copy"
[ "$got" = "manifest $4 $5 $6" ] || damaged "the staged copy does not match the snapshot taken ($got; want $4 entries, $5 bytes, pg_control $6)"
set -e
if [ "$data" != "$vol" ]; then
	mv -- "$data" "$old"
	mv -- "$stage" "$data"
else
	mkdir "$old"
	for f in "$data"/* "$data"/.[!.]* "$data"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ "$f" = "$stage" ] || [ "$f" = "$old" ] || mv -- "$f" "$old"/
	done
	for f in "$stage"/* "$stage"/.[!.]* "$stage"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		mv -- "$f" "$data"/
	done
	chown --reference="$stage" "$data"
	chmod --reference="$stage" "$data"
	rmdir -- "$stage"
fi
rm -rf -- "$old"
`

// restoreParseManifest reads the "manifest ENTRIES BYTES SHA" line.
func restoreParseManifest(out string) (restoreManifest, error) {
	for _, l := range strings.Split(out, "\n") {
		var m restoreManifest
		if n, _ := fmt.Sscanf(l, "manifest %d %d %s", &m.entries, &m.bytes, &m.control); n == 3 && len(m.control) == 64 && m.entries > 0 {
			return m, nil
		}
	}
	return restoreManifest{}, fmt.Errorf("no manifest of the copy in its output: %q", restoreTail(out))
}
