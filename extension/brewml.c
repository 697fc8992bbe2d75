/*
 * brewml.c
 *		Module entry point of the brewml extension.
 */
#include "postgres.h"

#include "fmgr.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Runs when the library is loaded, at server start with shared_preload_libraries. */
void
_PG_init(void)
{
}
