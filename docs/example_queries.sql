-- 1. Class balance per sector (swing profile): how often each sector hits +10% before -5%.
SELECT s.sector, count(*) AS samples,
       round(avg((l.label = 1)::INT), 3) AS win, round(avg((l.label = 0)::INT), 3) AS timeout,
       round(avg((l.label = -1)::INT), 3) AS loss
FROM labels l JOIN symbols s USING (symbol)
WHERE l.profile = 'swing' AND l.label IS NOT NULL
GROUP BY s.sector ORDER BY win DESC;

-- 2. Win rate by RSI(14) bucket: does "oversold" pay within 14 days?
SELECT floor(rsi_14 / 10) * 10 AS rsi_bucket, count(*) AS samples,
       round(avg((label = 1)::INT), 3) AS win_rate, round(avg(exit_return), 4) AS mean_exit_return
FROM samples
WHERE profile = 'swing' AND label IS NOT NULL AND rsi_14 IS NOT NULL
GROUP BY rsi_bucket ORDER BY rsi_bucket;

-- 3. Days to exit: how quickly the barriers are reached, per outcome.
SELECT label, count(*) AS samples, round(avg(exit_offset), 2) AS mean_days,
       round(median(exit_return), 4) AS median_exit_return
FROM labels WHERE profile = 'swing' AND label IS NOT NULL
GROUP BY label ORDER BY label;

-- 4. Stocks with the most wins in the last year of data.
SELECT symbol, count(*) AS samples, round(avg((label = 1)::INT), 3) AS win_rate
FROM labels
WHERE profile = 'swing' AND label IS NOT NULL
  AND date >= (SELECT max(date) - INTERVAL 365 DAY FROM labels)
GROUP BY symbol ORDER BY win_rate DESC LIMIT 10;

-- 5. Volatility regime: win and loss rates by 20-day volatility quintile.
SELECT ntile AS vol_quintile, count(*) AS samples,
       round(avg((label = 1)::INT), 3) AS win, round(avg((label = -1)::INT), 3) AS loss
FROM (SELECT label, ntile(5) OVER (ORDER BY vol_20) AS ntile FROM samples
      WHERE profile = 'swing' AND label IS NOT NULL AND vol_20 IS NOT NULL)
GROUP BY ntile ORDER BY ntile;
