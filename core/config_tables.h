/* config_tables.h -- the per-component key tables (config_tables.c). */
#ifndef TL_CONFIG_TABLES_H
#define TL_CONFIG_TABLES_H

#include "config.h"

typedef struct tl_config_component {
    const char *name;
    const tl_config_def *defs;   /* terminated by an entry with key NULL */
} tl_config_component;

extern const tl_config_component tl_config_components[];

#endif
