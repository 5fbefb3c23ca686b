#!/bin/sh
# man-coverage.sh - every public function of the installed headers
# (include/catena.h, include/catena_ffi.h) has a prototype in the SYNOPSIS
# of a man page under doc/ and is described in its text, and every error
# code of catena.h is listed in catena(3)'s ERRORS.  Fails naming what is
# missing, so the pages cannot drift from the headers.
#
#   srcdir  the source tree (set by automake's test harness; default: the
#           directory above this script)
srcdir=${srcdir:-$(dirname "$0")/..}
inc=$srcdir/include
doc=$srcdir/doc
status=0

for f in "$inc/catena.h" "$inc/catena_ffi.h"; do
    [ -f "$f" ] || { echo "man-coverage: $f missing"; exit 1; }
done
pages=$(ls "$doc"/*.3 2>/dev/null)
[ -n "$pages" ] || { echo "man-coverage: no man pages in $doc"; exit 1; }

# A declaration starts a line with its return type and names catena_*
# before the first parenthesis; comments and function-pointer typedefs
# do not match.
funcs=$(sed -n 's/^[a-z][a-z_0-9 ]*[ *]\(catena_[a-z_0-9]*\)(.*/\1/p' \
        "$inc/catena.h" "$inc/catena_ffi.h" | sort -u)
n=$(echo "$funcs" | wc -l)
[ "$n" -ge 50 ] || { echo "man-coverage: only $n functions found: parser broken?"; exit 1; }

for fn in $funcs; do
    # the prototype: a .BI line of a SYNOPSIS naming "fn("
    if ! grep -q "^\.BI \"[^\"]*[ *]$fn(" $pages; then
        echo "man-coverage: $fn has no prototype in doc/*.3"
        status=1
    fi
    # the description: a .BR/.B mention outside the prototypes
    if ! grep -q "^\.BR* $fn\( \|$\)" $pages; then
        echo "man-coverage: $fn is not described in doc/*.3"
        status=1
    fi
done

errs=$(sed -n 's/^ *\(CATENA_E[A-Z]*\)[,= ].*/\1/p' "$inc/catena.h" | sort -u)
[ -n "$errs" ] || { echo "man-coverage: no error codes found"; exit 1; }
for e in $errs; do
    if ! sed -n '/^\.SH ERRORS/,/^\.SH [^E]/p' "$doc/catena.3" |
            grep -q "$e"; then
        echo "man-coverage: $e is not in catena(3) ERRORS"
        status=1
    fi
done

[ $status = 0 ] && echo "man-coverage: $n functions, $(echo "$errs" | wc -l) error codes documented"
exit $status
