"""Beam step for the live crawl of page URLs: batches of pages fetched concurrently."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam

from crawl.fetch import Fetcher
from crawl.pages import crawl_page
from crawl.robots import RobotsPolicy
from filters.record import SOURCE, is_rejected
from pipeline.config import config_from_dict
from pipeline.metrics import REJECTED, count_verdict


class CrawlPageBatch(beam.DoFn):
    """[(page url, list file)] -> image candidate records and source rejects."""

    def __init__(self, config: dict):
        self._config_dict = config

    def setup(self):
        config = config_from_dict(self._config_dict)
        self.lazy_attributes = tuple(config.extract.lazy_attributes)
        self.fetcher = Fetcher(dataclasses.replace(config.download,
                                                   max_bytes=config.extract.max_page_bytes))
        self.robots = (RobotsPolicy(self.fetcher, config.download.user_agent_token)
                       if config.crawl.respect_robots_txt else None)
        self.pool = ThreadPoolExecutor(config.download.threads, thread_name_prefix="altcap-pages")

    def teardown(self):
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.fetcher.close()

    def _crawl(self, page):
        url, list_path = page
        return crawl_page(url, fetcher=self.fetcher, robots=self.robots, source=list_path,
                          lazy_attributes=self.lazy_attributes)

    def process(self, batch):
        for records in self.pool.map(self._crawl, batch):
            for record in records:
                count_verdict(SOURCE, record)  # counters only from the bundle's own thread
                yield beam.pvalue.TaggedOutput(REJECTED, record) if is_rejected(record) else record


class FetchPages(beam.PTransform):
    def __init__(self, config: dict):
        super().__init__()
        self._config_dict = config

    def expand(self, pages):
        return (pages
                | "SpreadPages" >> beam.Reshuffle()
                | "BatchPages" >> beam.BatchElements(min_batch_size=1, max_batch_size=256)
                | "Crawl" >> beam.ParDo(CrawlPageBatch(self._config_dict)).with_outputs(
                    REJECTED, main="records"))
