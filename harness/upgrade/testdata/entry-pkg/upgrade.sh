#!/bin/sh
# A vendor script without a manifest: it marks its own steps.
echo "::step check"
echo "checking as $(id -un)"
echo "::step install"
echo "installing"
echo "oops" >&2
echo "::step restart"
echo "restarting"
exit 7
