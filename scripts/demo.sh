#!/usr/bin/env bash
# README command 1: set everything up and run the main job, pretraining the demo student on the bundled sample scene.
. "$(dirname "$0")/setup_env.sh" teacher
rm -rf out/demo
.venv/bin/dualdistill pretrain --preset demo --out out/demo
