# Shared by scripts/fetch_peers.sh and scripts/fetch_tools.sh: download Debian packages with
# `apt-get download` into $DIR/debs (only what is not cached yet) and unpack them with `dpkg -x`
# into $DIR/root (only when the set changed). Nothing is installed, nothing is started.
# The caller sets DIR and PACKAGES and defines say() and die(); fetch_debs fills debs=().

updated=0
apt_update_once() {
  [ "$updated" = 1 ] && return 0
  [ "$(id -u)" = 0 ] || die "the apt package lists are missing or stale; run as root (sudo $0)"
  say "apt-get update"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  updated=1
}

# The version apt would pick for package $1 (empty if apt does not know it).
candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}' | grep -v '^(none)$' || true
}

# 1. The .debs of PACKAGES in $DIR/debs, checked; their paths in debs=().
fetch_debs() {
  debs=()
  for pkg in "${PACKAGES[@]}"; do
    ver=$(candidate "$pkg")
    if [ -z "$ver" ]; then
      # No package lists (fresh machine): use a cached .deb if there is one, else update.
      cached=$(ls "$DIR/debs/${pkg}_"*.deb 2>/dev/null | sort -V | tail -n 1 || true)
      if [ -n "$cached" ]; then
        debs+=("$cached")
        continue
      fi
      apt_update_once
      ver=$(candidate "$pkg")
      [ -n "$ver" ] || die "apt knows no package $pkg (is bookworm main in /etc/apt/sources.list*?)"
    fi
    want="$DIR/debs/${pkg}_${ver//:/%3a}_$(dpkg --print-architecture).deb"
    if [ ! -s "$want" ]; then
      # Architecture "all" packages have another file name; look for any matching version.
      match=$(ls "$DIR/debs/${pkg}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
      if [ -n "$match" ]; then
        want="$match"
      else
        say "downloading $pkg $ver"
        if ! (cd "$DIR/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null); then
          apt_update_once
          ver=$(candidate "$pkg")
          (cd "$DIR/debs" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) \
            || die "apt-get download $pkg failed"
        fi
        want=$(ls "$DIR/debs/${pkg}_${ver//:/%3a}_"*.deb | head -n 1)
        # Drop older versions of this package.
        for old in "$DIR/debs/${pkg}_"*.deb; do
          [ "$old" = "$want" ] || rm -f "$old"
        done
      fi
    fi
    dpkg-deb -I "$want" >/dev/null 2>&1 || { rm -f "$want"; die "$want is not a valid .deb (removed; run again)"; }
    debs+=("$want")
  done
}

# 2. Unpack debs=() into $DIR/root, again only if the set of .debs changed.
unpack_debs() {
  stamp="$DIR/root/.ntpfleet-extracted"
  wanted_stamp=$(for d in "${debs[@]}"; do basename "$d"; done | sort)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted_stamp" ]; then
    say "extracting ${#debs[@]} packages into $DIR/root"
    rm -rf "$DIR/root.new"
    mkdir -p "$DIR/root.new"
    for d in "${debs[@]}"; do dpkg -x "$d" "$DIR/root.new"; done
    echo "$wanted_stamp" >"$DIR/root.new/.ntpfleet-extracted"
    rm -rf "$DIR/root"
    mv "$DIR/root.new" "$DIR/root"
  fi
}
