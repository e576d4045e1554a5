#!/bin/sh
# Adds Hearth to the desktop's application menu for this user: writes ~/.local/share/applications/hearth.desktop
# pointing at this folder. Run it again after moving the folder; remove that file to undo.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
mkdir -p "$apps"
# '|' as the sed separator: the folder may contain '/', spaces and '&' is escaped below.
escaped=$(printf '%s' "$here" | sed 's/[&|\\]/\\&/g')
sed "s|@HEARTH_DIR@|$escaped|g" "$here/hearth.desktop" > "$apps/hearth.desktop.tmp"
mv "$apps/hearth.desktop.tmp" "$apps/hearth.desktop"
chmod 644 "$apps/hearth.desktop"
echo "Hearth is in the application menu ($apps/hearth.desktop)."
