#!/usr/bin/env bash
# Runs shellcheck on every shell script in the repository: files with a sh/bash/dash shebang or a
# `# shellcheck shell=` directive (sourced files), wherever they are.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts=()
while IFS= read -r -d '' file; do
  [ -f "$file" ] || continue
  first=$(head -n 2 -- "$file")
  case $first in
    '#!'*sh* | *'# shellcheck shell='*) scripts+=("$file") ;;
  esac
done < <(git ls-files -z --cached --others --exclude-standard -- ':!node_modules' ':!*.ts' ':!*.mjs' ':!*.json' ':!*.md')
shellcheck -x "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean"
