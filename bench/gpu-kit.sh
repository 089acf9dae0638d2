#!/usr/bin/env bash
# Prepare .devicekit/, what bench/gpu-check.sh needs on a bare GPU machine that has no Node,
# no Deno, no network and maybe no Vulkan loader: run it HERE, in the checkout that will be
# sent (the repository root), then name .devicekit in the device call's carry list.
#
#   bench/gpu-kit.sh            # builds, then fills .devicekit/ and prints what will travel
#
# .devicekit/ (git-ignored) holds:
#   deno.xz, deno.sha256   this checkout's Deno binary (node_modules/deno/deno, 95 MB)
#                          compressed with xz -9e (~28 MiB), and the binary's checksum;
#   gl/*.deb               the Vulkan loader and GL dispatch libraries (Debian amd64 packages,
#                          unpacked there only where they are missing);
#   build/*.ts             the generated modules src/ imports (the wasm kernels, base64), which
#                          git ignores with the rest of build/;
#   node_modules/          uvu and its dependencies, for test/webgpu.test.ts there;
#   kit.json               the commit, whether the tree was dirty, the Deno version, the date.
# Options (environment): DENO_BIN (the binary to carry; default node_modules/deno/deno),
# DENO_XZ (an xz of that same binary to reuse instead of compressing again; it is checked).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.devicekit
DENO_BIN=${DENO_BIN:-node_modules/deno/deno}
GL_PACKAGES="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
UVU_PACKAGES="uvu dequal diff kleur sade mri"
die() { echo "gpu-kit: $*" >&2; exit 1; }

git check-ignore -q "$KIT/" || die "$KIT is not git-ignored: it would travel as untracked files and be committed by accident"
[ -x "$DENO_BIN" ] || die "no Deno binary at $DENO_BIN (npm install, or set DENO_BIN)"
rm -rf "$KIT/build"
mkdir -p "$KIT/gl" "$KIT/node_modules" "$KIT/build"

echo "gpu-kit: building (node esbuild.config.mjs)"
nice node esbuild.config.mjs >/dev/null
cp build/*.ts "$KIT/build/"

# Deno: compress once; reuse a given or earlier xz when it decompresses to this very binary.
want=$(sha256sum <"$DENO_BIN" | cut -d' ' -f1)
xz_matches() { [ -f "$1" ] && [ "$(xz -dc "$1" | sha256sum | cut -d' ' -f1)" = "$want" ]; }
if [ -n "${DENO_XZ:-}" ] && [ "$DENO_XZ" != "$KIT/deno.xz" ]; then
  xz_matches "$DENO_XZ" || die "DENO_XZ=$DENO_XZ does not decompress to $DENO_BIN"
  cp "$DENO_XZ" "$KIT/deno.xz"
elif ! xz_matches "$KIT/deno.xz"; then
  echo "gpu-kit: compressing $DENO_BIN with xz -9e (a few minutes)"
  nice xz -9e -T1 -c "$DENO_BIN" >"$KIT/deno.xz.part"
  mv "$KIT/deno.xz.part" "$KIT/deno.xz"
fi
echo "$want" >"$KIT/deno.sha256"

# The Vulkan loader and libglvnd, as the device notes say: amd64 packages through a package
# list of our own in /tmp, so that this machine's apt state is left alone.
if ! ls "$KIT"/gl/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists" -oAPT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update >/dev/null
  # shellcheck disable=SC2086 # a list of package names
  (cd "$KIT/gl" && apt-get "${apt_opts[@]}" download $GL_PACKAGES >/dev/null)
  rm -rf "$lists"
fi

for p in $UVU_PACKAGES; do
  [ -d "node_modules/$p" ] || die "node_modules/$p missing (npm install)"
  rm -rf "$KIT/node_modules/$p"
  cp -r "node_modules/$p" "$KIT/node_modules/$p"
done

dirty=$([ -z "$(git status --porcelain --untracked-files=no)" ] && echo false || echo true)
cat >"$KIT/kit.json" <<EOF
{"commit": "$(git rev-parse HEAD)", "dirty": $dirty, "deno": "$("$DENO_BIN" --version | head -1)", "made": "$(date -u +%FT%TZ)"}
EOF

# What the device call sends: tracked and untracked-not-ignored files, plus the carried kit.
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
kit_bytes=$(du -sb "$KIT" | cut -f1)
echo "gpu-kit: $KIT ready: $(ls "$KIT"/gl | wc -l) packages, deno.xz $(du -h "$KIT/deno.xz" | cut -f1), kit.json: $(cat "$KIT/kit.json")"
awk -v t="$tree_bytes" -v k="$kit_bytes" 'BEGIN {
  printf "gpu-kit: travels: working tree %.1f MiB + %s %.1f MiB = %.1f MiB (limit 64 MiB)\n", t / 2^20, ".devicekit", k / 2^20, (t + k) / 2^20
  exit (t + k >= 64 * 2^20) }' || die "over the 64 MiB the device call carries"
