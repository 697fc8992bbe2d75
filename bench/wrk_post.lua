-- wrk script: POST the body in $WRK_BODY with Content-Type $WRK_TYPE (application/json by default)
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = os.getenv("WRK_TYPE") or "application/json"
