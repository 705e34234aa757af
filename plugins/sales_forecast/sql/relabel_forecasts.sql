-- Once this run's model is registered, its forecast rows carry the registry's version instead
-- of the provisional candidate:<run key>, so the table and the registry name it alike.
UPDATE {{ t.daily_sales_forecasts }}
SET model_version = @version
WHERE run_id = @run_id AND model_version = @candidate;
