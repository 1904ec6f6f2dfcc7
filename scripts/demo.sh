#!/usr/bin/env bash
# README command 1: set everything up and run the main job on the bundled sample scene.
. "$(dirname "$0")/setup_env.sh"
.venv/bin/dualdistill preview --out out/preview
