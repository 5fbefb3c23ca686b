# catena.m4 - our own configure macros.

# --with-block-size=N: a power of two >= 16; default chosen by catena.h from
# the pointer size (16 on 32-bit, 32 on 64-bit).
AC_DEFUN([CATENA_ARG_BLOCK_SIZE], [
  AC_ARG_WITH([block-size],
    [AS_HELP_STRING([--with-block-size=N],
      [heap block size in bytes, a power of two >= 16 (default: 16 on 32-bit, 32 on 64-bit)])],
    [], [with_block_size=auto])
  AS_CASE([$with_block_size],
    [auto|yes|no], [CATENA_CONF_BLOCK_SIZE=0; catena_block_size_msg="auto (pointer size)"],
    [16|32|64|128|256|512|1024], [CATENA_CONF_BLOCK_SIZE=$with_block_size; catena_block_size_msg=$with_block_size],
    [AC_MSG_ERROR([--with-block-size must be a power of two from 16 to 1024, not '$with_block_size'])])
  AC_SUBST([CATENA_CONF_BLOCK_SIZE])
])

# --with-index-bits=16|32: width of block indexes (largest heap, spine cost).
AC_DEFUN([CATENA_ARG_INDEX_BITS], [
  AC_ARG_WITH([index-bits],
    [AS_HELP_STRING([--with-index-bits=16|32],
      [block index width: 16 allows 65534 blocks per heap, 32 allows 2^28-1 (default: 16 with 16-byte blocks, else 32)])],
    [], [with_index_bits=auto])
  AS_CASE([$with_index_bits],
    [auto|yes|no], [CATENA_CONF_INDEX_BITS=0; catena_index_bits_msg="auto"],
    [16|32], [CATENA_CONF_INDEX_BITS=$with_index_bits; catena_index_bits_msg=$with_index_bits],
    [AC_MSG_ERROR([--with-index-bits must be 16 or 32])])
  AC_SUBST([CATENA_CONF_INDEX_BITS])
])

# --enable-debug: internal assertions (CATENA_DEBUG=1).  The debug code is
# compiled either way; this only switches it on.
AC_DEFUN([CATENA_ENABLE_DEBUG], [
  AC_ARG_ENABLE([debug],
    [AS_HELP_STRING([--enable-debug], [turn on internal assertions])])
  AS_IF([test "x$enable_debug" = xyes],
    [AC_SUBST([DEBUG_CPPFLAGS], [-DCATENA_DEBUG=1])],
    [AC_SUBST([DEBUG_CPPFLAGS], [])])
])

# --enable-sanitizers: AddressSanitizer + UndefinedBehaviorSanitizer.
AC_DEFUN([CATENA_ENABLE_SANITIZERS], [
  AC_ARG_ENABLE([sanitizers],
    [AS_HELP_STRING([--enable-sanitizers], [build with ASan and UBSan])])
  SAN_CFLAGS=
  AS_IF([test "x$enable_sanitizers" = xyes],
    [SAN_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"])
  AC_SUBST([SAN_CFLAGS])
])

# Warnings: -Wall -Wextra everywhere, -Wconversion -Wsign-conversion in
# lib/; -Werror unless --disable-werror.
AC_DEFUN([CATENA_WARNINGS], [
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--disable-werror], [do not turn warnings into errors])])
  WARN_CFLAGS="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
  AS_IF([test "x$enable_werror" != xno], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
  AC_SUBST([WARN_CFLAGS])
  AC_SUBST([LIB_WARN_CFLAGS], ["-Wconversion -Wsign-conversion"])
])

# AX_PTHREAD_SIMPLE: -pthread works with gcc and clang on Linux; we only
# check that it links.  Sets PTHREAD_CFLAGS / PTHREAD_LIBS.
AC_DEFUN([AX_PTHREAD_SIMPLE], [
  AC_MSG_CHECKING([whether -pthread links])
  save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -pthread"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>]],
                                  [[pthread_t t; (void)pthread_self(); (void)t;]])],
    [AC_MSG_RESULT([yes]); PTHREAD_CFLAGS=-pthread; PTHREAD_LIBS=-pthread],
    [AC_MSG_RESULT([no]); PTHREAD_CFLAGS=; PTHREAD_LIBS=-lpthread])
  CFLAGS=$save_CFLAGS
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
