/*
 * moments.h
 *		Helpers shared by the moments aggregates (moments.c, moments_by.c).
 */
#ifndef BREWML_MOMENTS_H
#define BREWML_MOMENTS_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"

#include "welford.h"

/* Beyond this many columns a row is surely a mistake, and the state stays small. */
#define MOMENTS_MAX_COLUMNS 1000

extern MemoryContext MomentsAggContext(FunctionCallInfo fcinfo, const char *fname);
extern Oid *MomentsArgTypes(FunctionCallInfo fcinfo, int first, int ncols, const char *fname);
extern double MomentsValueAsDouble(Datum d, Oid type);
extern void MomentsAddRow(FunctionCallInfo fcinfo, int first, int ncols, const Oid *types,
						  Welford *cols);
extern HeapTuple MomentsTuple(TupleDesc desc, const Welford *w);

#endif							/* BREWML_MOMENTS_H */
