// Table -> JSON rows for API responses: [{column: value | null, ...}, ...]. Integers as JSON integers,
// floats as numbers (NaN and infinities as null: JSON has no such values), booleans as true/false,
// datetimes as RFC 3339 strings in UTC, strings as strings; missing values as null. Pure function.
#pragma once

#include "common/json.h"
#include "data/table.h"

namespace lathe {

Json TableRowsToJson(const Table& t);

}  // namespace lathe
