/* The feature view's compiled call (view.c) and the parts it makes (view_parts.c,
 * view_articles.c): the names they read and the parts' signatures. */
#ifndef TAILORBOT_VIEW_H
#define TAILORBOT_VIEW_H

#include "native.h"

/* the names read (the state's keys, a bot message's, the profile's, the record's), interned
 * once */
enum {
    K_N, K_N_CM, K_FIRST, K_NEWEST, K_CM_TS, K_BOT, K_CSAT_N, K_CSAT_SUM, K_EWMA, K_ALPHA,
    K_RATINGS, K_SESSIONS, K_VIEWS, K_FEEDBACK, K_RESOLVED, K_OUTCOMES, K_TOTALS, K_CHANNELS,
    K_LATE, K_CUT_CAP, K_V, K_A, K_TIME, K_SESSION_ID, K_TEXT, K_NAME, K_TIER, K_LANGUAGE,
    K_REGION, K_PRODUCTS, K_ATTRIBUTES, K_USER_ID, K_EVENT_TIME, K_UPDATED_AT, K_LOWER, N_KEYS
};

extern PyObject *view_keys[N_KEYS];
extern const char *const VIEW_KEYS[N_KEYS];
/* the view's names, in order: the length of VIEW_NAMES (features/view.py); its windows */
enum { N_NAMES = 49, EVENT_WINDOWS = 4, SESSION_WINDOWS = 2, N_SEGMENTS = 5 };
/* the constants' items: see feature_view in module.c */
enum { C_NAMES, C_EVENT_WIDTHS, C_SESSION_WIDTHS, C_RATE_WINDOW, C_RETENTION, C_DECAY, C_TIER,
       C_LANGUAGE, N_CONSTANTS };
/* the segment rules' items: see feature_view in module.c */
enum { R_CSAT, R_STREAK, R_VIP_TIERS, R_FREQUENT, R_NEW_FOR, R_SEGMENTS, N_RULES };
#define EXACT_INTS 9007199254740992.0 /* 2^53: every int up to it converts to a double exactly */

/* features.state.ewma(start, alpha, ratings), alpha a float: a new reference, NULL with no
 * error set for what the Python path reads (a rating of another shape or type) */
PyObject *ewma_of(PyObject *start, double alpha, PyObject *ratings);
/* the newest bot message as {"time", "session_id", "text"}, or None when there is none or
 * a customer message came after it; NULL with no error set for another shape */
PyObject *unanswered_bot_message(PyObject *bot, PyObject *cm_ts);
/* the channel used most (then the newest, then by name), None for no channel; NULL with no
 * error set for a count or a time that is not a number a double holds exactly */
PyObject *preferred_channel(PyObject *channels);
/* math.fsum(values) / len(values), or None for no values */
PyObject *mean_of(PyObject *values);
/* SegmentRules.segments of the view's figures (features/segments.py): a new list of the
 * matching segments' names, NULL with no error set for a value it does not compare here */
PyObject *segments_of(PyObject *rules, PyObject *csat, PyObject *streak, PyObject *tier,
                      PyObject *sessions_7d, PyObject *first_seen, double as_of);
/* profile.get(key, fallback) (`fallback` borrowed) as a new reference */
PyObject *profile_value(PyObject *profile, int key, PyObject *fallback);
/* `list(profile.get("products", []))` and `dict(profile.get("attributes", {}))`: new
 * references in `out`, 0; -1 with no error set for another type (Python's path converts
 * it), or with an error set */
int profile_copies(PyObject *profile, PyObject **out);
/* the view's five article lists (view_articles.c) from the state's views, feedback and
 * resolved counts and the live sessions' resolutions: a new tuple, NULL with no error set
 * for what the Python path reads */
PyObject *article_lists(PyObject *views, PyObject *feedback, PyObject *kept, PyObject *live);

#endif
