// Differentially private profiles for the profile route (implemented in routes_privacy.cc, with the subject
// export and erasure routes). Internal to the api layer.
#pragma once

#include "api/data_settings.h"
#include "common/json.h"
#include "common/status.h"
#include "server/http_server.h"
#include "store/store.h"

namespace lathe {

class App;

// The privacy budget a profile request asks for: ?dp_epsilon= (a number, 0 < ε <= 100, else kInvalidArgument
// naming dp_epsilon), else the dataset's dp_epsilon setting; 0 = the exact profile.
Result<double> ProfileEpsilon(const HttpRequest& req, const DatasetSettings& settings);

// The differentially private view of `profile` (data/privacy.h PrivatizeProfile) of version `v`. Columns
// tagged "personal" in the settings never show their values. The noise is a keyed stream of the master key,
// the version's content and ε, so the same request always gets the same answer.
Result<Json> PrivateProfile(App& app, const DatasetVersionRecord& v, const Json& profile, double epsilon,
                            const DatasetSettings& settings);

}  // namespace lathe
