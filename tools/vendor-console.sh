#!/usr/bin/env bash
# Refreshes the console's vendored front-end libraries from the npm registry. The files are
# committed (the console fetches nothing at run time); run this only to change a version, then
# commit the result. Versions are pinned here and listed in static/vendor/VENDOR.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/services/gateway/shipyard_gateway/entrypoints/console/static/vendor"
PACKAGES=(htmx.org@2.0.11 htmx-ext-sse@2.2.4 uplot@1.6.32 cytoscape@3.35.0)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts "${PACKAGES[@]}" >/dev/null
mkdir -p "$DEST"
cp node_modules/htmx.org/dist/htmx.min.js "$DEST/htmx.min.js"
cp node_modules/htmx-ext-sse/dist/sse.min.js "$DEST/htmx-sse.min.js"
cp node_modules/uplot/dist/uPlot.iife.min.js "$DEST/uPlot.iife.min.js"
cp node_modules/uplot/dist/uPlot.min.css "$DEST/uPlot.min.css"
cp node_modules/cytoscape/dist/cytoscape.min.js "$DEST/cytoscape.min.js"
{
  echo "# Vendored front-end libraries"
  echo
  echo "Copied from the npm registry by \`tools/vendor-console.sh\`; served by the gateway under"
  echo "\`/static/vendor/\`. Nothing is fetched at run time."
  echo
  echo "| package | version | license | files |"
  echo "|---|---|---|---|"
  for spec in "${PACKAGES[@]}"; do
    name="${spec%@*}"
    NAME="$name" node -e 'const p = require("./node_modules/" + process.env.NAME + "/package.json"); process.stdout.write("| " + p.name + " | " + p.version + " | " + (p.license || "0BSD (its LICENSE file)") + " |")'
    case "$name" in
      htmx.org) echo " htmx.min.js |" ;;
      htmx-ext-sse) echo " htmx-sse.min.js |" ;;
      uplot) echo " uPlot.iife.min.js, uPlot.min.css |" ;;
      cytoscape) echo " cytoscape.min.js |" ;;
    esac
  done
} > "$DEST/VENDOR.md"
echo "vendored into $DEST"
